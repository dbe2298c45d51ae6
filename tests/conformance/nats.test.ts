import { natsTarget } from '../targets/nats.js';
import { defineConformanceSuite } from './suite.js';

const target = await natsTarget();
if (target) defineConformanceSuite(target);
