import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { MemoryHub } from '../../src/brokers/memory/memory-hub.js';
import { defineConformanceSuite } from './suite.js';

// Every connection of one test run shares one hub, as processes share one broker server.
const hub = new MemoryHub();

defineConformanceSuite({
  name: 'memory',
  features: new MemoryBroker().features,
  create: () => new MemoryBroker({ hub }),
});
