import { memoryTarget } from '../targets/memory.js';
import { defineConformanceSuite } from './suite.js';

defineConformanceSuite(memoryTarget());
