import { afterEach, describe, expect, it } from 'vitest';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import { BrokerAuthenticationError, BrokerUnavailableError, PublishError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { silentLogger } from '../../../src/util/logger.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { freePort, natsOptions, startOwnNatsServer, type OwnNatsServer } from '../../helpers/nats.js';
import { consumeWith } from '../../helpers/consume.js';

// JetStream servers of this file's own, stopped and started at will.
describe('NATS connection', () => {
  const brokers: NatsBroker[] = [];
  const servers: OwnNatsServer[] = [];
  const create = (url: string) => {
    const broker = new NatsBroker(natsOptions({ url }), silentLogger);
    brokers.push(broker);
    return broker;
  };
  const start = async (port?: number) => {
    const server = await startOwnNatsServer({ jetstream: true, port });
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('keeps connecting while the server is down, failing publishes at once, and resolves once it is up', async () => {
    const port = await freePort();
    const broker = create(`nats://127.0.0.1:${port}`);
    let connected = false;
    const connecting = broker.connect().then(() => (connected = true));
    await waitFor(() => broker.status().lastError !== null, 5000, 'a failed attempt');
    expect(broker.status()).toMatchObject({ connected: false, lastError: expect.stringMatching(/refused/) });

    const events = [makeEvent(), makeEvent()];
    const startedAt = Date.now();
    const error = await broker.publish(events).then(
      () => null,
      (e: unknown) => e,
    );
    // At once, not after a PubAck timeout (5 s).
    expect(Date.now() - startedAt).toBeLessThan(1000);
    expect(error).toBeInstanceOf(PublishError);
    expect([...(error as PublishError).failures.keys()]).toEqual(events.map((e) => e.id));
    expect((error as PublishError).failures.get(events[0]!.id)).toBeInstanceOf(BrokerUnavailableError);
    expect(connected).toBe(false);

    await start(port);
    await connecting;
    expect(broker.status()).toEqual({ connected: true, lastError: null });
    await broker.publish(events);
  });

  it('takes credentials from NATS_URL, and refuses at once, without the password, when the server does', async () => {
    const server = await startOwnNatsServer({ jetstream: true, args: ['--user', 'gateway', '--pass', 's3cret/pw'] });
    servers.push(server);
    const good = create(server.url.replace('nats://', 'nats://gateway:s3cret%2Fpw@'));
    await good.connect();
    expect(good.status()).toEqual({ connected: true, lastError: null });

    const bad = create(server.url.replace('nats://', 'nats://gateway:wrong@'));
    const error = await bad.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BrokerAuthenticationError);
    expect((error as Error).message).toContain(`NATS_URL: NATS at ${server.url.replace('nats://', 'nats://gateway:***@')} refused user "gateway"`);
    expect((error as Error).message).toMatch(/Authorization/i);
    expect((error as Error).message).not.toContain('wrong');
  });

  it('resumes consumers and subscriptions after the server restarts, reporting the outage meanwhile', async () => {
    const server = await start();
    const broker = create(server.url);
    await broker.connect();
    const topic = uniqueName('restart');
    const live: GatewayEvent[] = [];
    const handled: GatewayEvent[] = [];
    await broker.subscribe(topic, (event) => live.push(event));
    await consumeWith(broker, { name: uniqueName('resume'), topic, prefetch: 5 }, async (d) => {
      handled.push(d.event);
      return { kind: 'ack' };
    });
    const before = makeEvent({ topic });
    await broker.publish([before]);
    await waitFor(() => live.length === 1 && handled.length === 1, 5000, 'delivery before the restart');

    const outage: boolean[] = [];
    const watching = setInterval(() => outage.push(broker.status().connected), 20);
    await server.restart({ downMs: 1000 });
    await waitFor(() => broker.status().connected, 15_000, 'reconnected');
    clearInterval(watching);
    expect(outage).toContain(false);

    const after = Array.from({ length: 10 }, () => makeEvent({ topic }));
    await broker.publish(after);
    const ids = [before, ...after].map((e) => e.id);
    await waitFor(() => live.length === 11 && ids.every((id) => handled.some((e) => e.id === id)), 15_000, 'deliveries after the restart');
    // The subscription resumes where it was, each event once; the consumer delivers at least once.
    expect(live.map((e) => e.id)).toEqual(ids);
    expect(new Set(handled.map((e) => e.id))).toEqual(new Set(ids));
  });
});
