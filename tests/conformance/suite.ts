import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Settlement } from '../../src/brokers/broker.js';
import type { EventHandler } from '../../src/consumers/handlers/handler.js';
import type { GatewayEvent } from '../../src/events/event.js';
import { SubscriptionHub, type DeliveredEvent } from '../../src/subscriptions/subscription-hub.js';
import { silentLogger } from '../../src/util/logger.js';
import { gql, startTestApp, type TestAppOptions } from '../helpers/app.js';
import { makeEvent, uniqueName, waitFor } from '../helpers/events.js';
import { removeDatabase, tempDatabasePath } from '../helpers/store.js';
import type { BrokerTarget } from './target.js';
import { consumeWith } from '../helpers/consume.js';

type TestApp = Awaited<ReturnType<typeof startTestApp>>;

/** Events for one publish call: the relay never puts two events of one key in one call. */
function* waves(events: readonly GatewayEvent[]): Generator<GatewayEvent[]> {
  let wave: GatewayEvent[] = [];
  let keys = new Set<string | null>();
  for (const event of events) {
    if (event.key !== null && keys.has(event.key)) {
      yield wave;
      wave = [];
      keys = new Set();
    }
    wave.push(event);
    keys.add(event.key);
  }
  if (wave.length > 0) yield wave;
}

const seqOf = (event: GatewayEvent) => (event.data as { seq: number }).seq;

function expectOrderedPerKey(events: readonly GatewayEvent[]): void {
  const byKey = new Map<string, number[]>();
  for (const event of events) byKey.set(event.key!, [...(byKey.get(event.key!) ?? []), seqOf(event)]);
  for (const [, seqs] of byKey) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
}

/**
 * The one suite every broker adapter passes against the live broker. Each test uses its own
 * topics and consumer names, so targets and tests can share one broker.
 */
export function defineConformanceSuite(target: BrokerTarget): void {
  const T = target.timeoutMs ?? 10_000;
  const { features } = target;

  describe(`broker conformance: ${target.name}`, () => {
    const brokers: Broker[] = [];
    const apps: TestApp[] = [];
    const databases: string[] = [];

    const connect = async (): Promise<Broker> => {
      const broker = target.create();
      brokers.push(broker);
      await broker.connect();
      return broker;
    };

    /** A gateway "process": its own broker connection, optionally sharing a database with others. */
    const gateway = async (options: TestAppOptions & { databasePath?: string }): Promise<TestApp> => {
      const app = await startTestApp({ ...options, broker: options.broker ?? target.create() });
      apps.push(app);
      return app;
    };

    const sharedDatabase = () => {
      const path = tempDatabasePath();
      databases.push(path);
      return path;
    };

    const publishViaGateway = (app: TestApp, topic: string, count: number, extra: (i: number) => Record<string, unknown> = () => ({})) =>
      gql<{ publishEvents: { event: { id: string } }[] }>(
        app.url,
        `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { event { id } } }`,
        { inputs: Array.from({ length: count }, (_, i) => ({ topic, type: 'item.created', data: { seq: i }, ...extra(i) })) },
      ).then((r) => {
        if (r.errors) throw new Error(JSON.stringify(r.errors));
        return r.data!.publishEvents.map((p) => p.event.id);
      });

    beforeAll(async () => {
      await target.ensureUp?.();
    });

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.dispose()));
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
      for (const path of databases.splice(0)) removeDatabase(path);
    });

    it('publishes and subscribes 1,000 events with every attribute intact', async () => {
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
    });

    it.runIf(features.orderedByKey)('keeps per-key order for subscriptions and durable consumers', async () => {
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
    });

    it('redelivers to a durable consumer with a growing delay', async () => {
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
      gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(delays[i]! * 0.9));
      expect(gaps[2]).toBeGreaterThan(gaps[0]!);
      await consumer.close();
    });

    it('dead-letters after maxAttempts with the error, and replays to that consumer only', async () => {
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
      const letter = await waitFor(async () => (await app.services.deadLetters.list({ consumer: failing }, { limit: 5, inverted: false }))[0], T + 5000, 'dead letter');
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
    });

    it('skips an event the consumer already processed when it arrives again', async () => {
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
    });

    it.runIf(features.sharedConsumers)('shares one durable consumer between two gateway processes, each event handled once', async () => {
      const topic = uniqueName('conf');
      const name = uniqueName('shared');
      const databasePath = sharedDatabase();
      const handledBy: Record<string, string[]> = { a: [], b: [] };
      const slow = (who: 'a' | 'b'): EventHandler => async (event) => {
        handledBy[who]!.push(event.id);
        await new Promise((r) => setTimeout(r, 5));
      };
      const a = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 5 }], handlers: { [name]: slow('a') } });
      const b = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 5 }], handlers: { [name]: slow('b') } });
      const ids = await publishViaGateway(a, topic, 200, (i) => ({ key: `k${i}` }));
      await waitFor(async () => (await Promise.all(ids.map((id) => a.services.processed.has(name, id)))).every(Boolean), T + 20_000, 'all 200 processed');
      const all = [...handledBy['a']!, ...handledBy['b']!];
      expect(new Set(all).size).toBe(200);
      expect(all).toHaveLength(200);
      expect(handledBy['a']!.length).toBeGreaterThan(0);
      expect(handledBy['b']!.length).toBeGreaterThan(0);
      void b;
    });

    it('fans out to many GraphQL subscribers through one broker subscription', async () => {
      const broker = await connect();
      let opened = 0;
      const counting: Broker = Object.assign(Object.create(broker) as Broker, {
        subscribe: (...args: Parameters<Broker['subscribe']>) => {
          opened++;
          return broker.subscribe(...args);
        },
      });
      const hub = new SubscriptionHub(counting, silentLogger);
      const topic = uniqueName('conf');
      const streams = await Promise.all(Array.from({ length: 100 }, () => hub.subscribe(topic)));
      expect(opened).toBe(1);
      const event = makeEvent({ topic });
      await broker.publish([event]);
      for (const stream of streams) expect((await stream.next()).value?.event).toEqual(event);
      await hub.close();
    });

    /** Reads `n` events from a hub stream. */
    const take = async (stream: AsyncIterator<DeliveredEvent>, n: number): Promise<DeliveredEvent[]> => {
      const taken: DeliveredEvent[] = [];
      while (taken.length < n) {
        const next = await Promise.race([
          stream.next(),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${taken.length} of ${n} events`)), T)),
        ]);
        if (next.done) throw new Error(`stream ended after ${taken.length} of ${n} events`);
        taken.push(next.value);
      }
      return taken;
    };

    it.runIf(features.replay)('resumes a subscription after its cursor, in another process too: nothing missed, nothing repeated, in order per key', async () => {
      const first = await connect();
      const second = await connect();
      const topic = uniqueName('conf');
      const hub = new SubscriptionHub(first, silentLogger);
      const stream = await hub.subscribe(topic);
      const events = Array.from({ length: 60 }, (_, i) => makeEvent({ topic, key: `k${i % 4}`, data: { seq: i } }));
      const ids = (list: readonly { id: string }[]) => list.map((e) => e.id).sort();
      for (const wave of waves(events.slice(0, 20))) await first.publish(wave);
      const seen = await take(stream, 20);
      expect(ids(seen.map((d) => d.event))).toEqual(ids(events.slice(0, 20)));
      expect(seen.every((d) => typeof d.cursor === 'string')).toBe(true);
      // The client drops after the 10th event it got; 30 more are published while it is away. (On a
      // broker with partitions "the first 10" are in delivery order, not publish order.)
      const cursor = seen[9]!.cursor!;
      const before = new Set(seen.slice(0, 10).map((d) => d.event.id));
      stream.close();
      for (const wave of waves(events.slice(20, 50))) await first.publish(wave);
      // It comes back through another gateway process (another connection, another hub).
      const elsewhere = new SubscriptionHub(second, silentLogger);
      const resumed = await elsewhere.subscribe(topic, { after: cursor });
      const caughtUp = await take(resumed, 40);
      for (const wave of waves(events.slice(50))) await second.publish(wave);
      const all = [...caughtUp, ...(await take(resumed, 10))].map((d) => d.event);
      expect(ids(all)).toEqual(ids(events.filter((e) => !before.has(e.id))));
      expectOrderedPerKey(all);
      // A cursor is a position in the broker's log, not a copy of what was sent: the 40 events caught
      // up were all there was then, so resuming after the last of them brings exactly the 10 after.
      const again = await elsewhere.subscribe(topic, { after: caughtUp.at(-1)!.cursor! });
      expect(ids((await take(again, 10)).map((d) => d.event))).toEqual(ids(events.slice(50)));
      await hub.close();
      await elsewhere.close();
    });

    it.runIf(features.replay)('hands a resuming subscriber over to the shared subscription without a gap or a repeat while events keep coming', async () => {
      const broker = await connect();
      const topic = uniqueName('conf');
      const hub = new SubscriptionHub(broker, silentLogger);
      const live = await hub.subscribe(topic);
      const events = Array.from({ length: 300 }, (_, i) => makeEvent({ topic, key: `k${i % 5}`, data: { seq: i } }));
      for (const wave of waves(events.slice(0, 5))) await broker.publish(wave);
      const cursor = (await take(live, 5))[4]!.cursor!;
      // Resume while the rest is being published: the handover happens mid-stream.
      const publishing = (async () => {
        for (const wave of waves(events.slice(5))) await broker.publish(wave);
      })();
      const resumed = await hub.subscribe(topic, { after: cursor });
      await publishing;
      const got = (await take(resumed, 295)).map((d) => d.event);
      expect(got.map((e) => e.id).sort()).toEqual(events.slice(5).map((e) => e.id).sort());
      expectOrderedPerKey(got);
      await hub.close();
    });

    it.runIf(features.replay)('refuses a cursor it did not make', async () => {
      const broker = await connect();
      const hub = new SubscriptionHub(broker, silentLogger);
      await expect(hub.subscribe(uniqueName('conf'), { after: 'not-a-cursor' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      const elsewhere = Buffer.from(JSON.stringify({ l: 'a log that does not exist', p: { '': 5 } })).toString('base64url');
      await expect(hub.subscribe(uniqueName('conf'), { after: elsewhere })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
      await hub.close();
    });

    it.runIf(features.durableConsumers)('loses nothing when a consumer is closed while it is consuming', async () => {
      const topic = uniqueName('conf');
      const name = uniqueName('closing');
      const databasePath = sharedDatabase();
      const handled: string[] = [];
      const handler: EventHandler = async (event) => {
        await new Promise((r) => setTimeout(r, 10));
        handled.push(event.id);
      };
      const first = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 10 }], handlers: { [name]: handler } });
      const ids = await publishViaGateway(first, topic, 100);
      await waitFor(() => handled.length >= 20, T, 'some handled');
      await first.dispose();
      const countAtClose = handled.length;
      expect(countAtClose).toBeLessThan(100);
      const second = await gateway({ databasePath, consumers: [{ name, topic, prefetch: 10 }], handlers: { [name]: handler } });
      await waitFor(async () => (await Promise.all(ids.map((id) => second.services.processed.has(name, id)))).every(Boolean), T + 10_000, 'all processed after reopen');
      expect(new Set(handled).size).toBe(100);
    });

    it.runIf(features.lag)('reports consumer lag while messages wait', async () => {
      const broker = await connect();
      const topic = uniqueName('conf');
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const consumer = await consumeWith(broker, { name: uniqueName('lag'), topic, prefetch: 1 }, async () => {
        await gate;
        return { kind: 'ack' };
      });
      await broker.publish(Array.from({ length: 20 }, () => makeEvent({ topic })));
      await waitFor(async () => ((await consumer.lag()) ?? 0) >= 10, T, 'lag of at least 10');
      release();
      await waitFor(async () => (await consumer.lag()) === 0, T + 10_000, 'lag back to 0');
      await consumer.close();
    });

    it.runIf(features.persistent && target.restart !== undefined)(
      'delivers every committed outbox event when the broker restarts mid-stream',
      async () => {
        const topic = uniqueName('conf');
        const name = uniqueName('restart');
        const handled = new Set<string>();
        const app = await gateway({ consumers: [{ name, topic, prefetch: 20 }], handlers: { [name]: (event) => void handled.add(event.id) } });
        const ids: string[] = [];
        let publishing = true;
        const producer = (async () => {
          let i = 0;
          while (publishing) {
            ids.push(...(await publishViaGateway(app, topic, 5, () => ({ key: `k${i++ % 7}` }))));
            await new Promise((r) => setTimeout(r, 50));
          }
        })();
        await waitFor(() => handled.size >= 20, T, 'stream flowing');
        await target.restart!({ downMs: 2000 });
        await new Promise((r) => setTimeout(r, 1000));
        publishing = false;
        await producer;
        await waitFor(() => ids.every((id) => handled.has(id)), 120_000, `all ${ids.length} committed events handled`);
        // An event can reach the consumer while its confirm is lost in the restart: its row is
        // then published again after a backoff (a duplicate the consumer skips), never left behind.
        await waitFor(async () => (await app.services.outbox.count('PENDING')) === 0, 60_000, 'outbox drained');
        expect(await app.services.outbox.count('PUBLISHED')).toBe(ids.length);
      },
      240_000,
    );
  });
}
