import { afterAll } from 'vitest';
import { NatsBroker } from '../../src/brokers/nats/nats-broker.js';
import { silentLogger } from '../../src/util/logger.js';
import { publishWithNats } from './foreign-producers.js';
import { requireBroker } from '../helpers/brokers.js';
import { NATS_HOST, NATS_PORT, NATS_STREAM, NATS_URL, natsAnswers, natsOptions, plainClient, restartNatsServer } from '../helpers/nats.js';
import { CreatedNames, type BrokerTarget, type PublishTap } from './target.js';

/**
 * The machine's shared nats-server with JetStream, when it answers (on CI an unreachable one fails
 * the run, see `requireBroker`). After the file's tests it deletes the file's durable consumers
 * and their replay consumers from the stream.
 */
export async function natsTarget(): Promise<BrokerTarget | undefined> {
  if (!(await requireBroker('NATS', NATS_HOST, NATS_PORT))) return undefined;
  const names = new CreatedNames();
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave nats-server running:
    // with nothing listening, the restart helper only starts it.
    if (restarted && !(await natsAnswers())) await restartNatsServer({ downMs: 0 });
    const { nc, jsm } = await plainClient();
    try {
      for (const name of names.consumers) {
        for (const durable of [name, `_replay_${name}`]) await jsm.consumers.delete(NATS_STREAM, durable).catch(() => undefined);
      }
    } finally {
      await nc.close();
    }
  }, 60_000);

  const options = natsOptions();
  const create = (): NatsBroker => names.watch(new NatsBroker(options, silentLogger));
  return {
    name: 'nats (JetStream)',
    broker: 'nats',
    features: create().features,
    // What JetStream keeps of test events: the age every test connection sets (`natsOptions`).
    env: { NATS_URL: options.url, NATS_STREAM: options.stream, NATS_MAX_AGE_MS: String(options.maxAgeMs) },
    create,
    restart: (options) => {
      restarted = true;
      return restartNatsServer(options);
    },
    async ensureUp() {
      if (!(await natsAnswers())) throw new Error(`nats-server on ${NATS_URL} does not serve JetStream (started without -js?)`);
    },
    publishForeign: (message) => publishWithNats(NATS_URL, 'jetstream', message),
    tap: tapNats,
    newTopic: names.newTopic,
    newConsumer: names.newConsumer,
  };
}

/**
 * A core subscription sees every PUB to the subject, including copies JetStream's duplicate
 * window then drops: it counts what the relays sent, not what the stream kept.
 */
async function tapNats(topic: string): Promise<PublishTap> {
  const { nc } = await plainClient();
  const copies = new Map<string, number>();
  const subscription = nc.subscribe(`events.${topic}.>`, {
    callback: (error, message) => {
      if (error) return;
      const id = (message.json() as { id: string }).id;
      copies.set(id, (copies.get(id) ?? 0) + 1);
    },
  });
  await nc.flush();
  return {
    async collect() {
      // The server queued each copy to this connection before acknowledging it to the relay.
      await nc.flush();
      return copies;
    },
    async close() {
      subscription.unsubscribe();
      await nc.close();
    },
  };
}
