import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogPosition } from '../../../src/brokers/broker.js';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import { CursorExpiredError, InvalidCursorError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { silentLogger } from '../../../src/util/logger.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { NATS_STREAM, natsOptions, plainClient, startOwnNatsServer, type OwnNatsServer } from '../../helpers/nats.js';

interface Received {
  readonly id: string;
  readonly position: LogPosition | null;
}

const recorder = (into: Received[]) => (event: GatewayEvent, position: LogPosition | null) => void into.push({ id: event.id, position });
const offsets = (received: readonly Received[]) => received.map((r) => r.position!.offset);
const ids = (events: readonly { id: string }[]) => events.map((e) => e.id);
const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (error: unknown) => error,
  );

function expectIncreasing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
}

if (await requireBroker('NATS', '127.0.0.1', 4222)) {
  describe('NATS JetStream fan-out positions (shared server)', () => {
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    const brokers: NatsBroker[] = [];
    const connect = async () => {
      const broker = new NatsBroker(natsOptions(), silentLogger);
      brokers.push(broker);
      await broker.connect();
      return broker;
    };

    beforeAll(async () => {
      ({ nc, jsm } = await plainClient());
    });
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });
    afterAll(async () => {
      await nc?.close();
    });

    it('delivers each event with its stream sequence, growing across the gaps other topics leave, and reports where it started', async () => {
      const broker = await connect();
      const [topic, other] = [uniqueName('pos'), uniqueName('pos')];
      const stream = await jsm.streams.info(NATS_STREAM);
      const got: Received[] = [];
      const subscription = await broker.subscribe(topic, recorder(got));
      const events = Array.from({ length: 8 }, (_, i) => makeEvent({ topic: i % 2 === 0 ? topic : other }));
      await broker.publish(events);
      const mine = events.filter((e) => e.topic === topic);
      await waitFor(() => got.length === mine.length, 5000, 'the events');

      expect(got.map((r) => r.id)).toEqual(ids(mine));
      expect(got.every((r) => r.position?.partition === '')).toBe(true);
      expectIncreasing(offsets(got));
      // The position is where the stream holds the event: the other topic's events sit in between.
      for (const { id, position } of got) expect((await jsm.streams.getMessage(NATS_STREAM, { seq: position!.offset }))!.json<{ id: string }>().id).toBe(id);
      expect(offsets(got)[1]! - offsets(got)[0]!).toBeGreaterThanOrEqual(2);
      // It started after the stream's end as it was when it opened.
      expect(subscription.start['']).toBeGreaterThanOrEqual(stream.state.last_seq);
      expect(subscription.start['']).toBeLessThan(offsets(got)[0]!);
      expect(subscription.log).toBe(`${NATS_STREAM}@${stream.created}`);
      expect((await broker.subscribe(other, () => undefined)).log).toBe(subscription.log);
    });

    it('resumes after a point: exactly the events after it, at the positions they had, then live ones', async () => {
      const broker = await connect();
      const topic = uniqueName('resume');
      const events = Array.from({ length: 12 }, () => makeEvent({ topic }));
      const first: Received[] = [];
      const live = await broker.subscribe(topic, recorder(first));
      await broker.publish(events.slice(0, 8));
      await waitFor(() => first.length === 8, 5000, 'the first events');
      await live.close();
      // Published while nobody listens.
      await broker.publish(events.slice(8, 10));

      const point = first[3]!.position!.offset;
      const resumed: Received[] = [];
      const subscription = await broker.subscribe(topic, recorder(resumed), { after: { log: live.log!, point: { '': point } } });
      expect(subscription.start).toEqual({ '': point });
      expect(subscription.log).toBe(live.log);
      await waitFor(() => resumed.length === 6, 5000, 'the events after the point');
      await broker.publish(events.slice(10));
      await waitFor(() => resumed.length === 8, 5000, 'the live events');

      expect(resumed.map((r) => r.id)).toEqual(ids(events.slice(4)));
      expect(offsets(resumed).slice(0, 4)).toEqual(offsets(first).slice(4));
      expectIncreasing([point, ...offsets(resumed)]);

      // A point that names no partition starts at the beginning of the log.
      const all: Received[] = [];
      await broker.subscribe(topic, recorder(all), { after: { log: live.log!, point: {} } });
      await waitFor(() => all.length === 12, 5000, 'the whole topic');
      expect(all.map((r) => r.id)).toEqual(ids(events));
    });

    it('refuses a point past the end of the stream with BAD_USER_INPUT, and serves one at the end', async () => {
      const broker = await connect();
      const topic = uniqueName('end');
      const { log } = await broker.subscribe(topic, () => undefined);
      const end = (await jsm.streams.info(NATS_STREAM)).state.last_seq;

      const error = await rejection(broker.subscribe(topic, () => undefined, { after: { log: log!, point: { '': end + 1000 } } }));
      expect(error).toBeInstanceOf(InvalidCursorError);
      expect(error).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('past the end') });

      const got: Received[] = [];
      const atEnd = await broker.subscribe(topic, recorder(got), { after: { log: log!, point: { '': end } } });
      expect(atEnd.start).toEqual({ '': end });
      const event = makeEvent({ topic });
      await broker.publish([event]);
      await waitFor(() => got.length === 1, 5000, 'the live event');
      expect(got[0]!.id).toBe(event.id);
    });
  });
}

// JetStream servers of this file's own, whose stream the tests age out, delete and restart.
describe('NATS JetStream cursors that cannot resume', () => {
  const brokers: NatsBroker[] = [];
  const servers: OwnNatsServer[] = [];
  const closers: (() => Promise<void>)[] = [];
  const connect = async (url: string, maxAgeMs?: number) => {
    const broker = new NatsBroker(natsOptions({ url, ...(maxAgeMs ? { maxAgeMs } : {}) }), silentLogger);
    brokers.push(broker);
    await broker.connect();
    return broker;
  };
  const start = async () => {
    const server = await startOwnNatsServer({ jetstream: true });
    servers.push(server);
    return server;
  };
  const client = async (url: string) => {
    const plain = await plainClient(url);
    closers.push(() => plain.nc.close());
    return plain;
  };
  /** Publishes `count` events to `topic` while a subscription records them; returns what it received. */
  const publishSeen = async (broker: NatsBroker, topic: string, count: number) => {
    const got: Received[] = [];
    const subscription = await broker.subscribe(topic, recorder(got));
    const events = Array.from({ length: count }, () => makeEvent({ topic }));
    await broker.publish(events);
    await waitFor(() => got.length === count, 5000, 'the events');
    await subscription.close();
    return { events, got, log: subscription.log! };
  };

  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await Promise.all(brokers.splice(0).map((b) => b.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('refuses a cursor whose events the stream no longer keeps (max_age) with CURSOR_EXPIRED; the newest one still resumes', async () => {
    const server = await start();
    const broker = await connect(server.url, 1000);
    const { jsm } = await client(server.url);
    const topic = uniqueName('aged');
    const { got, log } = await publishSeen(broker, topic, 3);
    await waitFor(async () => (await jsm.streams.info(NATS_STREAM)).state.messages === 0, 10_000, 'the events to age out');
    const later = makeEvent({ topic });
    await broker.publish([later]);

    const error = await rejection(broker.subscribe(topic, () => undefined, { after: { log, point: { '': got[0]!.position!.offset } } }));
    expect(error).toBeInstanceOf(CursorExpiredError);
    expect(error).toMatchObject({ code: 'CURSOR_EXPIRED', message: expect.stringContaining('no longer kept') });

    // Nothing after the last event was lost: that cursor resumes with the event published since.
    const resumed: Received[] = [];
    await broker.subscribe(topic, recorder(resumed), { after: { log, point: { '': got[2]!.position!.offset } } });
    await waitFor(() => resumed.length === 1, 5000, 'the later event');
    expect(resumed[0]!.id).toBe(later.id);
  });

  it('resumes a cursor across a server restart, and refuses it with CURSOR_EXPIRED once the stream was deleted and made again', async () => {
    const server = await start();
    const broker = await connect(server.url);
    const topic = uniqueName('remade');
    const { events, got, log } = await publishSeen(broker, topic, 3);
    const cursor = { log, point: { '': got[0]!.position!.offset } };

    await server.restart({ downMs: 200 });
    await waitFor(() => broker.status().connected, 15_000, 'reconnected');
    const resumed: Received[] = [];
    await broker.subscribe(topic, recorder(resumed), { after: cursor });
    await waitFor(() => resumed.length === 2, 5000, 'the events after the cursor');
    expect(resumed.map((r) => r.id)).toEqual(ids(events.slice(1)));

    await broker.close();
    const { jsm } = await client(server.url);
    await jsm.streams.delete(NATS_STREAM);
    // A new process makes the stream anew; its sequences start at 1 again, so the cursor's point
    // now names other events.
    const remade = await connect(server.url);
    const again = await publishSeen(remade, topic, 3);
    expect(again.log).not.toBe(log);
    expect(offsets(again.got)[0]).toBeLessThanOrEqual(cursor.point['']);

    const error = await rejection(remade.subscribe(topic, () => undefined, { after: cursor }));
    expect(error).toBeInstanceOf(CursorExpiredError);
    expect(error).toMatchObject({ code: 'CURSOR_EXPIRED', message: expect.stringContaining('gone') });
  });
});
