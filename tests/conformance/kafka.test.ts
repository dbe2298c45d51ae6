import { kafkaTarget } from '../targets/kafka.js';
import { defineConformanceSuite } from './suite.js';

const target = await kafkaTarget();
if (target) defineConformanceSuite(target);
