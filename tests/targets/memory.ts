import { traceHeaders } from '../../src/brokers/headers.js';
import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { MemoryHub } from '../../src/brokers/memory/memory-hub.js';
import { decodeEvent } from '../../src/events/codec.js';
import { CreatedNames, type BrokerTarget } from './target.js';

/**
 * The in-process memory broker. Every connection `create()` opens shares one hub, as processes
 * share one broker server; a gateway process has a broker of its own, gone with it.
 */
export function memoryTarget(): BrokerTarget {
  const hub = new MemoryHub();
  const { newTopic, newConsumer } = new CreatedNames();
  return {
    name: 'memory',
    broker: 'memory',
    features: new MemoryBroker().features,
    env: {},
    create: () => new MemoryBroker({ hub }),
    // No wire: the message is decoded as the adapters decode what arrives, then put on the hub.
    async publishForeign({ topic, body, headers }) {
      const producer = new MemoryBroker({ hub });
      await producer.connect();
      await producer.publish([decodeEvent(body, { topic, ...traceHeaders((name) => headers[name]) })]);
      await producer.close();
    },
    newTopic,
    newConsumer,
  };
}
