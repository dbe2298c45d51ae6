import { afterAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../../src/brokers/broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { BrokerUnavailableError, ConfigError, PublishError } from '../../../src/errors.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, KAFKA_HOST, KAFKA_PORT, startKafka, stopKafka } from '../../helpers/kafka.js';
import { consumeWith } from '../../helpers/consume.js';

/**
 * Publishes as the relay does: again after a `PublishError`, until Kafka confirms. Right after a
 * restart Kafka answers before it leads every partition again, and refuses writes meanwhile.
 */
async function publishUntilConfirmed(broker: Broker, events: GatewayEvent[], timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await broker.publish(events);
    } catch (error) {
      if (!(error instanceof PublishError) || Date.now() > deadline) throw error;
    }
  }
}

describe('Kafka connection', () => {
  it('rejects connect() for options no retry can fix', async () => {
    const compression = createKafkaBroker({ compression: 'lz4' as 'gzip' });
    await expect(compression.connect()).rejects.toThrow(ConfigError);
    const noBrokers = createKafkaBroker({ brokers: [] });
    await expect(noBrokers.connect()).rejects.toThrow(/kafka\.brokers/);
    await Promise.all([compression.close(), noBrokers.close()]);
  });

  it('keeps retrying an unreachable broker, reports it in status(), and stops on close()', async () => {
    const broker = createKafkaBroker({ brokers: ['127.0.0.1:1'], requestRetries: 0 });
    let outcome: unknown = 'pending';
    const connecting = broker.connect().then(
      () => 'connected',
      (error: unknown) => error,
    );
    void connecting.then((value) => (outcome = value));
    await waitFor(() => broker.status().lastError !== null, 10_000, 'a connection error');
    expect(broker.status()).toEqual({ connected: false, lastError: expect.stringMatching(/ECONNREFUSED/) });
    expect(outcome).toBe('pending');
    await broker.close();
    expect(await connecting).toBeInstanceOf(BrokerUnavailableError);
  });
});

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka broker restart', () => {
    afterAll(() => startKafka(), 200_000);

    it('reports the outage, fails publishes meanwhile, and resumes subscriptions and consumers after it', async () => {
      const topic = uniqueName('outage');
      // Default request retries: a publish during the outage fails after ~10 s.
      const broker = createKafkaBroker({ probeIntervalMs: 500 });
      try {
        await broker.connect();
        const live: GatewayEvent[] = [];
        const handled: GatewayEvent[] = [];
        await broker.subscribe(topic, (event) => live.push(event));
        await consumeWith(broker, { name: uniqueName('outage'), topic, prefetch: 5 }, async (delivery) => {
          handled.push(delivery.event);
          return { kind: 'ack' };
        });
        const before = makeEvent({ topic });
        await broker.publish([before]);
        await waitFor(() => live.length === 1 && handled.length === 1, 15_000, 'event before the outage');

        try {
          await stopKafka();
          await waitFor(() => !broker.status().connected, 15_000, 'status to show the outage');
          expect(broker.status().lastError).not.toBeNull();
          const during = makeEvent({ topic });
          const failed = await broker.publish([during]).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(failed).toBeInstanceOf(PublishError);
          expect([...(failed as PublishError).failures.keys()]).toEqual([during.id]);
          expect((failed as PublishError).failures.get(during.id)).toMatchObject({ retryable: true });
        } finally {
          await startKafka();
        }

        await waitFor(() => broker.status().connected, 30_000, 'status to show Kafka is back');
        const after = makeEvent({ topic });
        await publishUntilConfirmed(broker, [after]);
        await waitFor(() => live.some((e) => e.id === after.id) && handled.some((e) => e.id === after.id), 60_000, 'event after the outage');
        // A refused attempt may still have been written, so `after` may come twice; nothing else.
        expect(new Set(live.map((e) => e.id))).toEqual(new Set([before.id, after.id]));
      } finally {
        await broker.close();
      }
    }, 180_000);
  });
}
