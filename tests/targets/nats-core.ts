import { afterAll } from 'vitest';
import { NatsBroker } from '../../src/brokers/nats/nats-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { publishWithNats } from './foreign-producers.js';
import { freePort, NATS_HOST, natsOptions, startOwnNatsServer, type OwnNatsServer } from '../helpers/nats.js';
import { CreatedNames, type BrokerTarget } from './target.js';

/**
 * Core NATS (no JetStream, at most once) on a nats-server of the file's own, started by
 * `ensureUp` and stopped after the file's tests: it keeps nothing to delete.
 */
export async function natsCoreTarget(): Promise<BrokerTarget> {
  const port = await freePort();
  const options = natsOptions({ url: `nats://${NATS_HOST}:${port}`, jetstream: 'off' });
  let server: OwnNatsServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });
  const names = new CreatedNames();
  return {
    name: 'nats (core, at most once)',
    broker: 'nats',
    features: new NatsBroker(options, silentLogger).features,
    env: { NATS_URL: options.url, NATS_JETSTREAM: options.jetstream },
    create: () => new NatsBroker(options, silentLogger),
    async ensureUp() {
      server = await startOwnNatsServer({ jetstream: false, port });
    },
    publishForeign: (message) => publishWithNats(options.url, 'core', message),
    newTopic: names.newTopic,
    newConsumer: names.newConsumer,
  };
}
