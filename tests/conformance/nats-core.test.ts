import { afterAll } from 'vitest';
import { NatsBroker } from '../../src/brokers/nats/nats-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort, natsOptions, startOwnNatsServer, type OwnNatsServer } from '../helpers/nats.js';
import { defineConformanceSuite } from './suite.js';

// Core NATS (no JetStream, at most once) on a server of this file's own.
const port = await freePort();
const options = natsOptions({ url: `nats://127.0.0.1:${port}`, jetstream: 'off' });
let server: OwnNatsServer | undefined;

defineConformanceSuite({
  name: 'nats (core, at most once)',
  features: new NatsBroker(options, silentLogger).features,
  create: () => new NatsBroker(options, silentLogger),
  async ensureUp() {
    server = await startOwnNatsServer({ jetstream: false, port });
  },
});

afterAll(async () => {
  await server?.stop();
});
