import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsumerBinding, DeliverySink } from '../../src/brokers/broker.js';
import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { ConsumerManager } from '../../src/consumers/consumer-manager.js';
import type { ConsumerDefinition } from '../../src/consumers/pipeline.js';
import { BrokerUnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeEvent, waitFor } from '../helpers/events.js';
import { openTempStore } from '../helpers/store.js';

/** A memory broker on which one named consumer cannot be set up. */
class RefusingBroker extends MemoryBroker {
  constructor(private readonly refused: string) {
    super();
  }

  override async consume(binding: ConsumerBinding, sink: DeliverySink) {
    if (binding.name === this.refused) {
      await new Promise((r) => setTimeout(r, 50));
      throw new BrokerUnavailableError(`cannot declare ${binding.name}`);
    }
    return super.consume(binding, sink);
  }
}

describe('consumer manager', () => {
  let store: ReturnType<typeof openTempStore>;
  beforeEach(() => {
    store = openTempStore();
  });
  afterEach(() => store.cleanup());

  const definition = (name: string, handler: ConsumerDefinition['handler']): ConsumerDefinition => ({
    name,
    topic: 'orders',
    maxAttempts: 3,
    backoff: { initialMs: 10, maxMs: 10, multiplier: 1, jitter: 0 },
    prefetch: 5,
    handler,
    description: 'function',
  });

  it('starts all consumers or none: one that cannot attach detaches the others and fails the start', async () => {
    const broker = new RefusingBroker('broken');
    const handled: string[] = [];
    const manager = new ConsumerManager({ broker, processed: store.processed, deadLetters: store.deadLetters, logger: silentLogger }, [
      definition('billing', (event) => void handled.push(event.id)),
      definition('broken', () => undefined),
    ]);
    await expect(manager.start()).rejects.toThrow(/cannot declare broken/);
    expect((await manager.statuses()).map((s) => [s.name, s.running])).toEqual([
      ['billing', false],
      ['broken', false],
    ]);
    // Detached: billing's queue keeps what is published, and nothing handles it.
    await broker.publish([makeEvent({ topic: 'orders' })]);
    await new Promise((r) => setTimeout(r, 50));
    expect(handled).toEqual([]);
  });

  it('starts every consumer, side by side', async () => {
    const broker = new MemoryBroker();
    const handled: string[] = [];
    const manager = new ConsumerManager({ broker, processed: store.processed, deadLetters: store.deadLetters, logger: silentLogger }, [
      definition('a', (event) => void handled.push(`a:${event.id}`)),
      definition('b', (event) => void handled.push(`b:${event.id}`)),
    ]);
    await manager.start();
    const event = makeEvent({ topic: 'orders' });
    await broker.publish([event]);
    await waitFor(() => handled.length === 2, 2000, 'both handled');
    expect(handled.sort()).toEqual([`a:${event.id}`, `b:${event.id}`]);
    await manager.stop();
  });
});
