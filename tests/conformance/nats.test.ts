import { afterAll } from 'vitest';
import { NatsBroker } from '../../src/brokers/nats/nats-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { requireBroker } from '../helpers/brokers.js';
import { NATS_STREAM, natsAnswers, natsOptions, plainClient, restartNatsServer } from '../helpers/nats.js';
import { defineConformanceSuite } from './suite.js';

if (await requireBroker('NATS', '127.0.0.1', 4222)) {
  const startedAt = Date.now();

  defineConformanceSuite({
    name: 'nats (JetStream)',
    features: new NatsBroker(natsOptions(), silentLogger).features,
    create: () => new NatsBroker(natsOptions(), silentLogger),
    restart: restartNatsServer,
    async ensureUp() {
      if (!(await natsAnswers())) throw new Error('nats-server on 127.0.0.1:4222 does not serve JetStream (started without -js?)');
    },
  });

  // The suite names its consumers `<purpose>-<8 hex>`; delete the ones this run created.
  afterAll(async () => {
    const { nc, jsm } = await plainClient();
    try {
      const made = /^(_replay_)?(order|retry|failing|healthy|idem|shared|closing|lag|restart)-[0-9a-f]{8}$/;
      for await (const info of jsm.consumers.list(NATS_STREAM)) {
        if (made.test(info.name) && Date.parse(info.created) >= startedAt) await jsm.consumers.delete(NATS_STREAM, info.name);
      }
    } finally {
      await nc.close();
    }
  });
}
