import { expect } from 'vitest';
import type { Settlement } from '../../../src/brokers/broker.js';
import type { EventHandler } from '../../../src/consumers/handlers/handler.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { consumeWith } from '../../helpers/consume.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { expectOrderedPerKey, waves, type Scenario } from '../scenario.js';

/** Publishing, order, redelivery, dead letters and idempotency: what a durable consumer can count on. */
export const deliveryScenarios: readonly Scenario[] = [
  {
    name: 'publishes and subscribes 1,000 events with every attribute intact',
    async run(_target, { T, connect }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      const received: GatewayEvent[] = [];
      const subscription = await broker.subscribe(topic, (event) => received.push(event));
      const events = Array.from({ length: 1000 }, (_, i) =>
        makeEvent({
          topic,
          type: `item.v${i % 3}`,
          key: `k${i % 100}`,
          subject: `subject/${i}`,
          source: 'urn:conformance',
          correlationId: `corr-${i}`,
          causationId: `cause-${i}`,
          data: { seq: i, nested: { list: [i, 'x', null, true], text: 'ünïcødé ✓' } },
        }),
      );
      for (const wave of waves(events)) await broker.publish(wave);
      await waitFor(() => received.length >= 1000, T, '1,000 events');
      const byId = new Map(received.map((e) => [e.id, e]));
      expect(byId.size).toBe(1000);
      for (const event of events) expect(byId.get(event.id)).toEqual(event);
      await subscription.close();
    },
  },
  {
    name: 'keeps per-key order for subscriptions and durable consumers',
    needs: ['orderedByKey'],
    async run(_target, { T, connect }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      const name = uniqueName('order');
      const live: GatewayEvent[] = [];
      const handled: GatewayEvent[] = [];
      const subscription = await broker.subscribe(topic, (event) => live.push(event));
      const consumer = await consumeWith(broker, { name, topic, prefetch: 20 }, async (delivery) => {
        handled.push(delivery.event);
        return { kind: 'ack' };
      });
      const events = Array.from({ length: 300 }, (_, i) => makeEvent({ topic, key: `key-${i % 5}`, data: { seq: i } }));
      for (const wave of waves(events)) await broker.publish(wave);
      await waitFor(() => live.length >= 300 && handled.length >= 300, T, 'all events');
      expectOrderedPerKey(live);
      expectOrderedPerKey(handled);
      await subscription.close();
      await consumer.close();
    },
  },
  {
    // A consumer whose webhook takes its time is as fast as the calls it has open: a prefetch of
    // 6 must mean 6 calls at once on 6 keys, whichever partitions (on Kafka) the keys are on.
    name: 'runs as many deliveries at once as the prefetch, across keys and partitions',
    async run(_target, { T, connect }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      const prefetch = 6;
      let running = 0;
      let most = 0;
      let handled = 0;
      const consumer = await consumeWith(broker, { name: uniqueName('prefetch'), topic, prefetch }, async () => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 100));
        running--;
        handled++;
        return { kind: 'ack' };
      });
      await broker.publish(Array.from({ length: 60 }, (_, i) => makeEvent({ topic, key: `key-${i % prefetch}` })));
      await waitFor(() => handled >= 60, T, '60 deliveries');
      expect(most).toBe(prefetch);
      await consumer.close();
    },
  },
  {
    name: 'redelivers to a durable consumer with a growing delay',
    async run(_target, { T, connect }) {
      const broker = await connect();
      const topic = uniqueName('conf');
      const deliveries: { attempt: number; at: number }[] = [];
      const delays = [300, 600, 1200];
      const consumer = await consumeWith(broker, { name: uniqueName('retry'), topic, prefetch: 5 }, async (delivery): Promise<Settlement> => {
        deliveries.push({ attempt: delivery.attempt, at: Date.now() });
        const delayMs = delays[delivery.attempt - 1];
        return delayMs === undefined ? { kind: 'ack' } : { kind: 'retry', delayMs, error: 'not yet' };
      });
      await broker.publish([makeEvent({ topic })]);
      await waitFor(() => deliveries.length >= 4, T + 5000, '4 deliveries');
      expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
      const gaps = deliveries.slice(1).map((d, i) => d.at - deliveries[i]!.at);
      for (const [i, gap] of gaps.entries()) expect(gap).toBeGreaterThanOrEqual(delays[i]! * 0.9);
      expect(gaps[2]).toBeGreaterThan(gaps[0]!);
      await consumer.close();
    },
  },
  {
    name: 'dead-letters after maxAttempts with the error, and replays to that consumer only',
    async run(_target, { T, gateway, publishViaGateway }) {
      const topic = uniqueName('conf');
      const calls: Record<string, string[]> = { failing: [], healthy: [] };
      let fixed = false;
      const failing = uniqueName('failing');
      const healthy = uniqueName('healthy');
      const app = await gateway({
        consumers: [
          { name: failing, topic, maxAttempts: 3, backoff: { initialMs: 100, maxMs: 400, multiplier: 2, jitter: 0 } },
          { name: healthy, topic },
        ],
        handlers: {
          [failing]: (event) => {
            calls['failing']!.push(event.id);
            if (!fixed) throw new Error(`cannot handle ${event.id}`);
          },
          [healthy]: (event) => void calls['healthy']!.push(event.id),
        },
      });
      const [id] = await publishViaGateway(app, topic, 1);
      const letter = await waitFor(
        async () => (await app.services.deadLetters.list({ consumer: failing }, { limit: 5, inverted: false }))[0],
        T + 5000,
        'dead letter',
      );
      expect(letter).toMatchObject({ consumer: failing, eventId: id, error: `cannot handle ${id}`, attempts: 3, status: 'DEAD' });
      expect(calls['failing']).toEqual([id, id, id]);
      await waitFor(() => calls['healthy']!.length === 1, T, 'healthy consumer');

      fixed = true;
      await app.services.consumers.replay(letter.id);
      await waitFor(() => app.services.processed.has(failing, id!), T, 'replayed event processed');
      expect(calls['failing']).toHaveLength(4);
      await new Promise((r) => setTimeout(r, 300));
      expect(calls['healthy']).toEqual([id]);
      expect((await app.services.deadLetters.get(letter.id))?.status).toBe('REPLAYED');
    },
  },
  {
    name: 'skips an event the consumer already processed when it arrives again',
    async run(_target, { T, connect, gateway }) {
      const topic = uniqueName('conf');
      const name = uniqueName('idem');
      const handled: string[] = [];
      const app = await gateway({ consumers: [{ name, topic }], handlers: { [name]: (event) => void handled.push(event.id) } });
      const broker = await connect();
      const event = makeEvent({ topic });
      await broker.publish([event]);
      await waitFor(() => app.services.processed.has(name, event.id), T, 'first delivery');
      // The same event again, as a producer retry or a broker redelivery would bring it.
      await broker.publish([{ ...event }]);
      await broker.publish([makeEvent({ topic, id: `${event.id}-marker` })]);
      await waitFor(() => handled.includes(`${event.id}-marker`), T, 'marker');
      expect(handled.filter((id) => id === event.id)).toHaveLength(1);
    },
  },
  {
    name: 'shares one durable consumer between two gateway processes, each event handled once',
    needs: ['sharedConsumers'],
    async run(_target, { T, gateway, sharedDatabase, publishViaGateway }) {
      const topic = uniqueName('conf');
      const name = uniqueName('shared');
      const databasePath = sharedDatabase();
      const handledBy: Record<string, string[]> = { a: [], b: [] };
      const slow =
        (who: 'a' | 'b'): EventHandler =>
        async (event) => {
          handledBy[who]!.push(event.id);
          await new Promise((r) => setTimeout(r, 5));
        };
      const a = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 5 }], handlers: { [name]: slow('a') } });
      await gateway({ databasePath, consumers: [{ name, topic, prefetch: 5 }], handlers: { [name]: slow('b') } });
      const ids = await publishViaGateway(a, topic, 200, (i) => ({ key: `k${i}` }));
      await waitFor(async () => (await Promise.all(ids.map((id) => a.services.processed.has(name, id)))).every(Boolean), T + 20_000, 'all 200 processed');
      const all = [...handledBy['a']!, ...handledBy['b']!];
      expect(new Set(all).size).toBe(200);
      expect(all).toHaveLength(200);
      expect(handledBy['a']!.length).toBeGreaterThan(0);
      expect(handledBy['b']!.length).toBeGreaterThan(0);
    },
  },
];
