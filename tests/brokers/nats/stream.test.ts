import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import { ConfigError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { uniqueName } from '../../helpers/events.js';
import { captureLogger, natsOptions, plainClient, startOwnNatsServer, type OwnNatsServer } from '../../helpers/nats.js';

const DAY = 24 * 3600 * 1000;

// A JetStream server of this file's own (its store is deleted afterwards): these tests change
// stream settings and create rival streams.
describe('NATS stream set-up', () => {
  let server: OwnNatsServer;
  const brokers: NatsBroker[] = [];
  const connect = async (overrides: Parameters<typeof natsOptions>[0] = {}, logger = silentLogger) => {
    const broker = new NatsBroker(natsOptions({ url: server.url, ...overrides }), logger);
    brokers.push(broker);
    await broker.connect();
    return broker;
  };
  const streamInfo = async (name: string) => {
    const { nc, jsm } = await plainClient(server.url);
    try {
      return await jsm.streams.info(name);
    } finally {
      await nc.close();
    }
  };

  beforeAll(async () => {
    server = await startOwnNatsServer({ jetstream: true });
  });
  // Only one stream can own events.>: every test starts without any.
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((b) => b.close()));
    const { nc, jsm } = await plainClient(server.url);
    for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
    await nc.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates the stream on events.> with file storage, limits retention and a 2-minute duplicate window', async () => {
    const stream = uniqueName('S');
    await connect({ stream, maxAgeMs: 0 });
    const info = await streamInfo(stream);
    expect(info.config).toMatchObject({
      name: stream,
      subjects: ['events.>'],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: 0,
      duplicate_window: nanos(120_000),
    });
  });

  it('brings an existing stream to the configured max age, keeping subjects an operator added', async () => {
    const { nc, jsm } = await plainClient(server.url);
    try {
      const stream = uniqueName('S');
      await jsm.streams.add({ name: stream, subjects: ['audit.>'], max_age: 0 });
      await connect({ stream, maxAgeMs: 7 * DAY });
      expect((await streamInfo(stream)).config).toMatchObject({
        subjects: ['audit.>', 'events.>'],
        max_age: nanos(7 * DAY),
        duplicate_window: nanos(120_000),
      });

      // A max age shorter than the duplicate window caps the window, as the server requires.
      await connect({ stream, maxAgeMs: 30_000 });
      expect((await streamInfo(stream)).config).toMatchObject({ max_age: nanos(30_000), duplicate_window: nanos(30_000) });
    } finally {
      await nc.close();
    }
  });

  it('refuses to connect, with ConfigError, when another stream already owns events.>', async () => {
    const { nc, jsm } = await plainClient(server.url);
    const rival = uniqueName('RIVAL');
    await jsm.streams.add({ name: rival, subjects: ['events.>'] });
    try {
      const stream = uniqueName('S');
      const broker = new NatsBroker(natsOptions({ url: server.url, stream }), silentLogger);
      brokers.push(broker);
      const error = await broker.connect().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(`NATS_STREAM ${stream}`);
      expect((error as Error).message).toMatch(/overlap/);
      expect(broker.status().connected).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it('warns once, naming them, that per-topic ttlMs cannot be applied', async () => {
    const stream = uniqueName('S');
    const { logger, lines } = captureLogger();
    await connect({ stream, topics: { orders: { ttlMs: 60_000 }, audit: {}, clicks: { ttlMs: 1000 } } }, logger);
    const warnings = lines.filter((line) => line['level'] === 40 && (line['topics'] as unknown[] | undefined)?.length);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ topics: ['orders', 'clicks'], stream });
    expect(warnings[0]!['msg']).toMatch(/ttlMs of orders, clicks is not applied/);
  });
});
