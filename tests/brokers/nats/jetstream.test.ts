import { AckPolicy, DeliverPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Settlement } from '../../../src/brokers/broker.js';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { silentLogger } from '../../../src/util/logger.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { captureLogger, NATS_STREAM, natsOptions, plainClient } from '../../helpers/nats.js';
import { type TestBinding, bindingOf, consumeWith } from '../../helpers/consume.js';

const backoff = { initialMs: 100, maxMs: 60_000, multiplier: 4, jitter: 0.2 };

if (await requireBroker('NATS', '127.0.0.1', 4222)) {
  describe('NATS JetStream adapter', () => {
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    const brokers: NatsBroker[] = [];
    const consumers: string[] = [];

    const connect = async (overrides: Parameters<typeof natsOptions>[0] = {}) => {
      const broker = new NatsBroker(natsOptions(overrides), silentLogger);
      brokers.push(broker);
      await broker.connect();
      return broker;
    };
    const binding = (overrides: Partial<TestBinding> = {}): TestBinding => {
      const name = uniqueName('nats');
      consumers.push(name, `_replay_${name}`);
      return { name, topic: uniqueName('topic'), prefetch: 10, ...overrides };
    };
    const record =
      (deliveries: Delivery[], settle: (d: Delivery) => Settlement = () => ({ kind: 'ack' })) =>
      async (d: Delivery) => {
        deliveries.push(d);
        return settle(d);
      };

    beforeAll(async () => {
      ({ nc, jsm } = await plainClient());
    });
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
      for (const name of consumers.splice(0)) await jsm.consumers.delete(NATS_STREAM, name).catch(() => undefined);
    });
    afterAll(async () => {
      await nc?.close();
    });

    it('stores an event id once when it is published twice within the duplicate window', async () => {
      const broker = await connect();
      const event = makeEvent({ topic: uniqueName('dedupe'), type: 'a.b' });
      await broker.publish([event]);
      await broker.publish([{ ...event, data: { changed: true } }]);
      const info = await jsm.streams.info(NATS_STREAM, { subjects_filter: `events.${event.topic}.>` });
      expect(info.state.subjects).toEqual({ [`events.${event.topic}.a.b`]: 1 });
      const stored = await jsm.streams.getMessage(NATS_STREAM, { last_by_subj: `events.${event.topic}.a.b` });
      expect(stored!.json<{ data: unknown }>().data).toEqual(event.data);
    });

    it('creates a durable pull consumer as documented, with its replay companion', async () => {
      const broker = await connect({ ackWaitMs: 1000 });
      const b = binding({ types: ['order.created'], maxAttempts: 4, backoff });
      const consumer = await consumeWith(broker, b, async () => ({ kind: 'ack' }));
      const info = await jsm.consumers.info(NATS_STREAM, b.name);
      expect(info.config).toMatchObject({
        durable_name: b.name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        filter_subject: `events.${b.topic}.order.created`,
        max_deliver: 4 + 5,
        max_ack_pending: -1,
        ack_wait: nanos(1000),
        // The retry delays 100 × 4^(n-1) ms, never below ack_wait.
        backoff: [1000, 1000, 1600, 6400].map(nanos),
      });
      const replay = await jsm.consumers.info(NATS_STREAM, `_replay_${b.name}`);
      expect(replay.config).toMatchObject({ filter_subject: `events._replay.${b.name}`, max_deliver: 9, ack_policy: AckPolicy.Explicit });
      await consumer.close();

      // Attaching again with other types and limits updates the consumer in place.
      await (await consumeWith(broker, { ...b, types: ['order.created', 'order.paid'], maxAttempts: 2 }, async () => ({ kind: 'ack' }))).close();
      const updated = await jsm.consumers.info(NATS_STREAM, b.name);
      expect(updated.config).toMatchObject({ filter_subject: `events.${b.topic}.>`, max_deliver: 7 });
    });

    it('terminates a message after its last attempt, so the server never redelivers it', async () => {
      const broker = await connect({ ackWaitMs: 500 });
      const b = binding({ maxAttempts: 2, backoff: { initialMs: 50, maxMs: 50, multiplier: 1, jitter: 0 } });
      const terminated: { stream_seq: number }[] = [];
      const advisories = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${NATS_STREAM}.${b.name}`, {
        callback: (_, msg) => void terminated.push(msg.json()),
      });
      await nc.flush();
      const deliveries: Delivery[] = [];
      await consumeWith(
        broker,
        b,
        record(deliveries, (d) => (d.attempt < 2 ? { kind: 'retry', delayMs: 50, error: 'again' } : { kind: 'dead-letter', error: 'gave up' })),
      );
      const event = makeEvent({ topic: b.topic });
      await broker.publish([event]);
      await waitFor(() => terminated.length === 1, 5000, 'the server reporting the message terminated');
      expect(deliveries.map((d) => [d.event.id, d.attempt])).toEqual([
        [event.id, 1],
        [event.id, 2],
      ]);
      const stored = await jsm.streams.getMessage(NATS_STREAM, { last_by_subj: `events.${b.topic}.${event.type}` });
      expect(terminated[0]!.stream_seq).toBe(stored!.seq);
      expect((await jsm.consumers.info(NATS_STREAM, b.name)).num_ack_pending).toBe(0);
      advisories.unsubscribe();
    });

    it('logs, with the event id, a message the server gave up on after max_deliver deliveries', async () => {
      const { logger, lines } = captureLogger();
      const broker = new NatsBroker(natsOptions({ maxDeliverMargin: 0 }), logger);
      brokers.push(broker);
      await broker.connect();
      const b = binding({ maxAttempts: 2 });
      const deliveries: Delivery[] = [];
      // A handler that never lets the pipeline decide, as a process dying mid-delivery would.
      await consumeWith(
        broker,
        b,
        record(deliveries, () => ({ kind: 'retry', delayMs: 10, error: 'again' })),
      );
      const event = makeEvent({ topic: b.topic });
      await broker.publish([event]);
      const message = 'NATS gave up on a message after max_deliver deliveries without a settlement';
      const gaveUp = await waitFor(() => lines.find((line) => line['msg'] === message), 5000, 'the log');
      expect(gaveUp).toMatchObject({ level: 50, consumer: b.name, stream: NATS_STREAM, eventId: event.id, deliveries: 2 });
      expect(deliveries.map((d) => d.attempt)).toEqual([1, 2]);
    });

    it('replays to that consumer only, as attempt 1, although the duplicate window holds the event id', async () => {
      const broker = await connect();
      const topic = uniqueName('replay');
      const a = binding({ topic });
      const b = binding({ topic });
      const got = { a: [] as Delivery[], b: [] as Delivery[], live: [] as GatewayEvent[] };
      await consumeWith(broker, a, record(got.a));
      await consumeWith(broker, b, record(got.b));
      await broker.subscribe(topic, (event) => got.live.push(event));
      const event = makeEvent({ topic });
      await broker.publish([event]);
      await waitFor(() => got.a.length === 1 && got.b.length === 1 && got.live.length === 1, 5000, 'first delivery');

      await broker.redeliver(bindingOf(a), event);
      await waitFor(() => got.a.length === 2, 5000, 'the replay');
      expect(got.a[1]).toMatchObject({ event, attempt: 1 });
      // Anything the replay reached would arrive before a later event: stream order.
      const marker = makeEvent({ topic });
      await broker.publish([marker]);
      await waitFor(() => got.b.length === 2 && got.live.length === 2, 5000, 'the marker');
      expect(got.b.map((d) => d.event.id)).toEqual([event.id, marker.id]);
      expect(got.live.map((e) => e.id)).toEqual([event.id, marker.id]);
    });

    it('runs at most prefetch handler calls at once, and uses all of them', async () => {
      const broker = await connect();
      const b = binding({ prefetch: 3 });
      let running = 0;
      let most = 0;
      let handled = 0;
      await consumeWith(broker, b, async () => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 30));
        running--;
        handled++;
        return { kind: 'ack' };
      });
      await broker.publish(Array.from({ length: 20 }, () => makeEvent({ topic: b.topic })));
      await waitFor(() => handled === 20, 10_000, '20 handled');
      expect(most).toBe(3);
    });

    it('keeps a delivery whose handler runs longer than ack_wait (progress reports), and delivers it once', async () => {
      const broker = await connect({ ackWaitMs: 600 });
      const b = binding();
      const deliveries: Delivery[] = [];
      await consumeWith(broker, b, async (d) => {
        deliveries.push(d);
        await new Promise((r) => setTimeout(r, 2000));
        return { kind: 'ack' };
      });
      await broker.publish([makeEvent({ topic: b.topic })]);
      const acked = async () => (await jsm.consumers.info(NATS_STREAM, b.name)).num_ack_pending === 0;
      await waitFor(async () => deliveries.length === 1 && (await acked()), 8000, 'the ack');
      expect(deliveries).toHaveLength(1);
      expect((await jsm.consumers.info(NATS_STREAM, b.name)).num_redelivered).toBe(0);
    });

    it('close() waits for handler calls in flight and settles them; the rest stays for the next attachment', async () => {
      const broker = await connect();
      const b = binding({ prefetch: 2 });
      const started: string[] = [];
      const finished: string[] = [];
      const consumer = await consumeWith(broker, b, async (d) => {
        started.push(d.event.id);
        await new Promise((r) => setTimeout(r, 300));
        finished.push(d.event.id);
        return { kind: 'ack' };
      });
      const events = Array.from({ length: 6 }, () => makeEvent({ topic: b.topic }));
      await broker.publish(events);
      await waitFor(() => started.length === 2, 5000, 'two handler calls');
      await consumer.close();
      expect(finished).toEqual(started.slice(0, finished.length));
      expect(new Set(finished)).toEqual(new Set(started));
      // Acks reach the server over the broker's connection, this info over another one.
      const info = await waitFor(
        async () => {
          const current = await jsm.consumers.info(NATS_STREAM, b.name);
          return current.num_ack_pending === 0 ? current : undefined;
        },
        5000,
        'every delivery settled',
      );
      expect(info.num_pending).toBe(6 - finished.length);

      const rest: string[] = [];
      await consumeWith(broker, b, async (d) => {
        rest.push(d.event.id);
        return { kind: 'ack' };
      });
      await waitFor(() => rest.length === 6 - finished.length, 5000, 'the rest');
      expect([...finished, ...rest].sort()).toEqual(events.map((e) => e.id).sort());
      expect(await consumer.lag()).toBe(0);
    });
  });
}
