import { natsCoreTarget } from '../targets/nats-core.js';
import { defineConformanceSuite } from './suite.js';

defineConformanceSuite(await natsCoreTarget());
