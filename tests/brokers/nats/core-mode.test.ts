import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, LogPosition } from '../../../src/brokers/broker.js';
import type { NatsConnector } from '../../../src/brokers/nats/connection.js';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import { BrokerCapabilityError, BrokerUnavailableError, CursorExpiredError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { silentLogger } from '../../../src/util/logger.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { natsOptions, startOwnNatsServer, type OwnNatsServer } from '../../helpers/nats.js';
import { type TestBinding, bindingOf, consumeWith } from '../../helpers/consume.js';

// A core-only nats-server (no -js) of this file's own.
describe('NATS without JetStream', () => {
  let server: OwnNatsServer;
  const brokers: NatsBroker[] = [];
  const create = (jetstream: 'required' | 'off') => {
    const broker = new NatsBroker(natsOptions({ url: server.url, jetstream }), silentLogger);
    brokers.push(broker);
    return broker;
  };
  const connectCore = async () => {
    const broker = create('off');
    await broker.connect();
    return broker;
  };
  const binding = (overrides: Partial<TestBinding> = {}): TestBinding => ({
    name: uniqueName('core'),
    topic: uniqueName('topic'),
    prefetch: 5,
    ...overrides,
  });

  beforeAll(async () => {
    server = await startOwnNatsServer({ jetstream: false });
  });
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses to connect when JetStream is required, saying why and how to fix it', async () => {
    const broker = create('required');
    const error = await broker.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokerCapabilityError);
    const message = (error as Error).message;
    expect(message).toContain(`NATS at ${server.url} has no JetStream`);
    expect(message).toContain('JetStream is required for durable consumers and confirmed publishing');
    expect(message).toContain('-js');
    expect(message).toContain('NATS_JETSTREAM=off');
    expect(broker.status()).toEqual({ connected: false, lastError: message });
  });

  it('declares at-most-once features and reports no lag', async () => {
    const broker = await connectCore();
    expect(broker.features).toEqual({
      persistent: false,
      sharedConsumers: true,
      orderedByKey: true,
      publishDeduplication: false,
      lag: false,
      durableConsumers: false,
      replay: false,
    });
    const consumer = await consumeWith(broker, binding(), async () => ({ kind: 'ack' }));
    expect(await consumer.lag()).toBeNull();
    expect(broker.status()).toEqual({ connected: true, lastError: null });
  });

  it('fans out published events to a subscription, in order, with every attribute', async () => {
    const publisher = await connectCore();
    const subscriber = await connectCore();
    const topic = uniqueName('fan');
    const received: GatewayEvent[] = [];
    await subscriber.subscribe(topic, (event) => received.push(event));
    const events = Array.from({ length: 50 }, (_, i) =>
      makeEvent({ topic, type: `t.v${i % 2}`, key: 'k', subject: `s/${i}`, causationId: `c-${i}`, data: { seq: i } }),
    );
    await publisher.publish(events);
    await waitFor(() => received.length === 50, 5000, '50 events');
    expect(received).toEqual(events);
  });

  it('fans out without positions, and refuses to resume after a cursor: core NATS keeps nothing', async () => {
    const broker = await connectCore();
    const topic = uniqueName('fan');
    const received: [string, LogPosition | null][] = [];
    const subscription = await broker.subscribe(topic, (event, position) => void received.push([event.id, position]));
    expect(subscription.log).toBeNull();
    expect(subscription.start).toEqual({});
    const event = makeEvent({ topic });
    await broker.publish([event]);
    await waitFor(() => received.length === 1, 5000, 'the event');
    expect(received).toEqual([[event.id, null]]);

    const error = await broker
      .subscribe(topic, () => undefined, { after: { log: 'any', point: { '': 0 } } })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(CursorExpiredError);
    expect(error).toMatchObject({ code: 'CURSOR_EXPIRED', message: expect.stringContaining('core NATS, which keeps nothing to resume from') });
  });

  it('shares a consumer between processes as a queue group, each event handled once', async () => {
    const [a, b, publisher] = [await connectCore(), await connectCore(), await connectCore()];
    const shared = binding();
    const handled = { a: [] as string[], b: [] as string[] };
    const handler = (who: 'a' | 'b') => async (d: Delivery) => {
      handled[who].push(d.event.id);
      return { kind: 'ack' as const };
    };
    await consumeWith(a, shared, handler('a'));
    await consumeWith(b, shared, handler('b'));
    const events = Array.from({ length: 100 }, () => makeEvent({ topic: shared.topic }));
    await publisher.publish(events);
    await waitFor(() => handled.a.length + handled.b.length === 100, 5000, '100 handled');
    expect(new Set([...handled.a, ...handled.b]).size).toBe(100);
    expect(handled.a.length).toBeGreaterThan(0);
    expect(handled.b.length).toBeGreaterThan(0);
  });

  it('subscribes consumers and fan-out again on a connection that replaced one closed for good', async () => {
    const [broker, publisher] = [await connectCore(), await connectCore()];
    const b = binding();
    const handled: string[] = [];
    const fanned: string[] = [];
    await consumeWith(broker, b, async (d) => {
      handled.push(d.event.id);
      return { kind: 'ack' };
    });
    await broker.subscribe(b.topic, (event) => void fanned.push(event.id));
    // What a fatal error (say, credentials refused on reconnect) does: the connection closes and
    // nats.js will not bring it back; the connector dials a new one.
    const connector = (broker as unknown as { connector: NatsConnector }).connector;
    const old = connector.current()!.nc;
    await old.close();
    await waitFor(() => connector.current() !== undefined && connector.current()!.nc !== old, 10_000, 'a new connection');
    const event = makeEvent({ topic: b.topic });
    await waitFor(
      async () => {
        if (!handled.includes(event.id) || !fanned.includes(event.id)) await publisher.publish([event]);
        return handled.includes(event.id) && fanned.includes(event.id);
      },
      10_000,
      'delivered on the new connection',
    );
  });

  it('retries in the process after the delay, counting attempts', async () => {
    const broker = await connectCore();
    const b = binding();
    const deliveries: { attempt: number; at: number }[] = [];
    await consumeWith(broker, b, async (d) => {
      deliveries.push({ attempt: d.attempt, at: Date.now() });
      return d.attempt < 3 ? { kind: 'retry', delayMs: 200, error: 'not yet' } : { kind: 'ack' };
    });
    await broker.publish([makeEvent({ topic: b.topic })]);
    await waitFor(() => deliveries.length === 3, 5000, 'three attempts');
    expect(deliveries.map((d) => d.attempt)).toEqual([1, 2, 3]);
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(190);
  });

  it('replays to a running consumer only, and refuses a replay nobody can take', async () => {
    const broker = await connectCore();
    const topic = uniqueName('replay');
    const [target, other] = [binding({ topic }), binding({ topic })];
    const got = { target: [] as Delivery[], other: [] as Delivery[] };
    const record = (into: Delivery[]) => async (d: Delivery) => {
      into.push(d);
      return { kind: 'ack' as const };
    };
    await consumeWith(broker, target, record(got.target));
    await consumeWith(broker, other, record(got.other));
    const event = makeEvent({ topic });
    await broker.redeliver(bindingOf(target), event);
    expect(got.target.map((d) => [d.event, d.attempt])).toEqual([[event, 1]]);
    // The replay was taken before redeliver resolved; a later event shows the other consumer is live.
    const marker = makeEvent({ topic });
    await broker.publish([marker]);
    await waitFor(() => got.other.length === 1, 5000, 'the marker');
    expect(got.other[0]!.event.id).toBe(marker.id);

    const nobody = binding({ topic });
    const error = await broker.redeliver(bindingOf(nobody), event).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokerUnavailableError);
    expect((error as Error).message).toContain(`no process runs consumer ${nobody.name}`);
  });
});
