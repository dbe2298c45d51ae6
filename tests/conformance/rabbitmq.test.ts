import { rabbitMqTarget } from '../targets/rabbitmq.js';
import { defineConformanceSuite } from './suite.js';

const target = await rabbitMqTarget();
if (target) defineConformanceSuite(target);
