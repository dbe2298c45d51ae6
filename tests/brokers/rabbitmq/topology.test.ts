import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Settlement } from '../../../src/brokers/broker.js';
import type { RabbitMqBroker, RabbitMqBrokerOptions } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { ConfigError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { type TestBinding, consumeWith } from '../../helpers/consume.js';
import {
  createRabbitMqBroker,
  deleteRabbitMqObjects,
  listBindings,
  listExchanges,
  listQueues,
  plainClient,
  queueState,
  streamQueue,
} from '../../helpers/rabbitmq.js';

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  describe('RabbitMQ topology', () => {
    const exchange = uniqueName('x');
    const consumers = new Set<string>();
    const streams = new Set<string>();
    const brokers: RabbitMqBroker[] = [];

    const connect = async (options: Partial<RabbitMqBrokerOptions> = {}) => {
      const broker = createRabbitMqBroker({ exchange, ...options });
      brokers.push(broker);
      await broker.connect();
      return broker;
    };
    const binding = (overrides: Partial<TestBinding> = {}): TestBinding => {
      const name = overrides.name ?? uniqueName('topo');
      consumers.add(name);
      return { name, topic: uniqueName('t'), prefetch: 5, ...overrides };
    };

    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    });
    afterAll(() => deleteRabbitMqObjects({ consumers, streams, exchanges: [exchange] }));
    /** A topic whose stream this suite deletes afterwards. */
    const subscribedTopic = () => {
      const topic = uniqueName('t');
      streams.add(streamQueue(topic, exchange));
      return topic;
    };

    it('declares a durable topic exchange and a durable queue per consumer, bound to its topic or its types', async () => {
      const broker = await connect();
      const all = binding();
      const typed = binding({ topic: all.topic, types: ['order.created', 'order.paid'] });
      const received: Record<string, string[]> = { [all.name]: [], [typed.name]: [] };
      for (const b of [all, typed]) {
        await consumeWith(broker, b, async ({ event }) => {
          received[b.name]!.push(event.type);
          return { kind: 'ack' };
        });
      }

      expect((await listExchanges()).find((x) => x.name === exchange)).toEqual({ name: exchange, type: 'topic', durable: true, auto_delete: false });
      const queues = await listQueues();
      for (const name of [all.name, typed.name, `${all.name}.dlq`, `${typed.name}.dlq`]) {
        expect(queues.find((q) => q.name === name)).toMatchObject({ durable: true, exclusive: false, auto_delete: false });
      }
      const keys = (queue: string) =>
        listBindings().then((rows) =>
          rows
            .filter((r) => r.source_name === exchange && r.destination_name === queue)
            .map((r) => r.routing_key)
            .sort(),
        );
      expect(await keys(all.name)).toEqual([`${all.topic}.#`]);
      expect(await keys(typed.name)).toEqual([`${all.topic}.order.created`, `${all.topic}.order.paid`]);

      await broker.publish([makeEvent({ topic: all.topic, type: 'order.created' }), makeEvent({ topic: all.topic, type: 'order.shipped' })]);
      await waitFor(() => received[all.name]!.length === 2 && received[typed.name]!.length === 1, 5000, 'deliveries');
      expect(received[typed.name]).toEqual(['order.created']);
    });

    it('retries through <consumer>.retry.<bucket>, which hands the message back with the attempt counted up', async () => {
      const broker = await connect();
      const b = binding();
      const attempts: number[] = [];
      await consumeWith(broker, b, async ({ attempt }): Promise<Settlement> => {
        attempts.push(attempt);
        return attempt < 3 ? { kind: 'retry', delayMs: 300, error: `attempt ${attempt} failed` } : { kind: 'ack' };
      });
      await broker.publish([makeEvent({ topic: b.topic })]);
      await waitFor(() => attempts.length >= 3, 5000, 'three attempts');
      expect(attempts).toEqual([1, 2, 3]);
      const retryQueue = (await listQueues()).find((q) => q.name === `${b.name}.retry.512`);
      expect(retryQueue).toMatchObject({
        durable: true,
        messages: 0,
        arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': b.name },
      });
    });

    it('declares a retry queue again when someone deleted it, and the retry still arrives', async () => {
      const broker = await connect();
      const b = binding();
      const attempts: number[] = [];
      let deleted!: () => void;
      const queueGone = new Promise<void>((resolve) => (deleted = resolve));
      await consumeWith(broker, b, async ({ attempt }): Promise<Settlement> => {
        attempts.push(attempt);
        // The second attempt answers only once the queue the first retry went through is gone.
        if (attempt === 2) await queueGone;
        return attempt < 3 ? { kind: 'retry', delayMs: 300, error: `attempt ${attempt} failed` } : { kind: 'ack' };
      });
      await broker.publish([makeEvent({ topic: b.topic })]);
      await waitFor(() => attempts.length >= 2, 5000, 'the first retry');
      const plain = await plainClient();
      try {
        await plain.channel.deleteQueue(`${b.name}.retry.512`);
      } finally {
        await plain.close();
      }
      deleted();
      await waitFor(() => attempts.includes(3), 10_000, 'the second retry, through a declared-again queue');
      // The copy sent to the missing queue came back unroutable: that settlement failed, the
      // delivery went back to the queue and ran again as attempt 2, and its retry declared the
      // queue anew.
      expect(attempts).toEqual([1, 2, 2, 3]);
      expect((await listQueues()).some((q) => q.name === `${b.name}.retry.512`)).toBe(true);
    });

    it('dead-letters to <consumer>.dlq with the error and attempt headers, and acks the original', async () => {
      const broker = await connect();
      const b = binding();
      const calls: string[] = [];
      await consumeWith(broker, b, async ({ event, attempt }): Promise<Settlement> => {
        calls.push(event.id);
        if (event.type === 'marker') return { kind: 'ack' };
        return attempt === 1 ? { kind: 'retry', delayMs: 50, error: 'first try failed' } : { kind: 'dead-letter', error: 'boom: no such order' };
      });
      const event = makeEvent({ topic: b.topic, correlationId: 'corr-dlq' });
      await broker.publish([event]);

      const client = await plainClient();
      try {
        await waitFor(async () => (await queueState(client.connection, `${b.name}.dlq`))?.messageCount === 1, 5000, 'dead letter');
        const letter = await client.channel.get(`${b.name}.dlq`, { noAck: true });
        if (!letter) throw new Error('the dead-letter queue is empty');
        expect(JSON.parse(letter.content.toString())).toMatchObject({ id: event.id, topic: b.topic, correlationid: 'corr-dlq' });
        expect(letter.properties).toMatchObject({ messageId: event.id, deliveryMode: 2, contentType: 'application/cloudevents+json' });
        expect(letter.properties.headers).toMatchObject({
          'x-gateway-error': 'boom: no such order',
          'x-gateway-attempt': 2,
          'x-gateway-consumer': b.name,
          'cloudEvents:id': event.id,
          'x-correlation-id': 'corr-dlq',
        });
        expect(letter.properties.headers).not.toHaveProperty('x-death');

        // Acked, not redelivered: a later event arrives and the dead-lettered one never comes back.
        const marker = makeEvent({ topic: b.topic, type: 'marker' });
        await broker.publish([marker]);
        await waitFor(() => calls.includes(marker.id), 5000, 'marker');
        expect(calls.filter((id) => id === event.id)).toHaveLength(2);
        expect(await queueState(client.connection, b.name)).toMatchObject({ messageCount: 0 });
      } finally {
        await client.close();
      }
    });

    it('keeps a short retry from waiting behind a long one (retry queues per delay bucket)', async () => {
      const broker = await connect();
      const b = binding();
      const seen: { id: string; attempt: number; at: number }[] = [];
      const slow = makeEvent({ topic: b.topic });
      const fast = makeEvent({ topic: b.topic });
      await consumeWith(broker, b, async ({ event, attempt }): Promise<Settlement> => {
        seen.push({ id: event.id, attempt, at: Date.now() });
        if (attempt > 1) return { kind: 'ack' };
        return { kind: 'retry', delayMs: event.id === slow.id ? 3000 : 100, error: 'later' };
      });
      await broker.publish([slow]);
      await waitFor(() => seen.some((s) => s.id === slow.id), 5000, 'slow event');
      await broker.publish([fast]);
      await waitFor(() => seen.length === 4, 10_000, 'both retried');
      const at = (id: string, attempt: number) => seen.find((s) => s.id === id && s.attempt === attempt)!.at;
      expect(at(fast.id, 2) - at(fast.id, 1)).toBeLessThan(1500);
      expect(at(fast.id, 2)).toBeLessThan(at(slow.id, 2));
      expect(at(slow.id, 2) - at(slow.id, 1)).toBeGreaterThanOrEqual(2900);
    });

    it('reads subscriptions of a topic from one durable stream <exchange>.stream.<topic>, bound to <topic>.#, which outlives them', async () => {
      const broker = await connect();
      const topic = subscribedTopic();
      const received: GatewayEvent[][] = [[], []];
      const subscriptions = await Promise.all(received.map((into) => broker.subscribe(topic, (event) => into.push(event))));
      const bound = (await listBindings()).filter((r) => r.source_name === exchange && r.routing_key === `${topic}.#`);
      expect(bound.map((r) => r.destination_name)).toEqual([`${exchange}.stream.${topic}`]);
      const stream = `${exchange}.stream.${topic}`;
      expect((await listQueues()).find((q) => q.name === stream)).toMatchObject({
        durable: true,
        auto_delete: false,
        consumers: 2,
        arguments: { 'x-queue-type': 'stream', 'x-max-age': '7D', 'x-stream-max-segment-size-bytes': 8_000_000 },
      });

      const event = makeEvent({ topic, type: 'a.b.c' });
      await broker.publish([event]);
      await waitFor(() => received.every((into) => into.length === 1), 5000, 'fan-out delivery to both');
      expect(received).toEqual([[event], [event]]);

      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      // The stream stays, with no consumer of the closed subscriptions left on it.
      await waitFor(async () => (await listQueues()).find((q) => q.name === stream)?.consumers === 0, 5000, 'the stream without consumers');
    });

    it("puts the topic TTL on its consumers' queues as x-message-ttl and on its stream as x-max-age", async () => {
      const topic = subscribedTopic();
      const broker = await connect({ topics: { [topic]: { ttlMs: 60_000 } } });
      const b = binding({ topic });
      await consumeWith(broker, b, async () => ({ kind: 'ack' }));
      await broker.subscribe(topic, () => undefined);
      const queues = await listQueues();
      expect(queues.find((q) => q.name === b.name)?.arguments).toEqual({ 'x-message-ttl': 60_000 });
      expect(queues.find((q) => q.name === `${exchange}.stream.${topic}`)?.arguments).toEqual({
        'x-queue-type': 'stream',
        'x-max-age': '60s',
        'x-stream-max-segment-size-bytes': 8_000_000,
      });
      // Dead letters are kept until someone looks at them, whatever the topic's TTL.
      expect(queues.find((q) => q.name === `${b.name}.dlq`)?.arguments).toEqual({});
    });

    it('refuses a consumer whose queue already exists with another TTL, naming the queue and the argument', async () => {
      const topic = uniqueName('t');
      const b = binding({ topic });
      const client = await plainClient();
      try {
        await client.channel.assertQueue(b.name, { durable: true, arguments: { 'x-message-ttl': 1000 } });
      } finally {
        await client.close();
      }
      const broker = await connect({ topics: { [topic]: { ttlMs: 5000 } } });
      const attempt = consumeWith(broker, b, async () => ({ kind: 'ack' }));
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
      await expect(attempt).rejects.toThrow(new RegExp(`queue "${b.name}" already exists with a different x-message-ttl`));

      // The refusal closed one channel, not the connection: other consumers still work.
      const other = binding({ topic });
      const handled: string[] = [];
      await consumeWith(broker, other, async ({ event }) => {
        handled.push(event.id);
        return { kind: 'ack' };
      });
      const event = makeEvent({ topic });
      await broker.publish([event]);
      await waitFor(() => handled.includes(event.id), 5000, 'delivery to the other consumer');
      expect(broker.status()).toEqual({ connected: true, lastError: null });
    });
  });
}
