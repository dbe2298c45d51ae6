import { afterAll } from 'vitest';
import type { KafkaBroker } from '../../src/brokers/kafka/kafka-broker.js';
import { deadLetterTopicOf, retryTopicOf } from '../../src/brokers/kafka/options.js';
import { publishWithKafkajs } from './foreign-producers.js';
import { reachable, requireBroker } from '../helpers/brokers.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { createKafkaBroker, KAFKA_HOST, KAFKA_PORT, plainKafka, restartKafka, startKafka, withAdmin } from '../helpers/kafka.js';
import { CreatedNames, type BrokerTarget, type PublishTap } from './target.js';

/**
 * The harness's Kafka, when it answers (on CI an unreachable one fails the run, see
 * `requireBroker`). After the file's tests it deletes the file's topics and its consumers' groups
 * and `.retry`/`.dlq` topics: left behind, they pile up in the local store run after run and make
 * every Kafka restart slower.
 */
export async function kafkaTarget(): Promise<BrokerTarget | undefined> {
  if (!(await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT))) return undefined;
  const names = new CreatedNames();
  let restarted = false;
  afterAll(async () => {
    // Whatever happened to a restart (a timed-out test abandons it), leave Kafka running.
    if (restarted) await startKafka();
    const consumers = [...names.consumers];
    const topics = [...names.topics, ...consumers.flatMap((c) => [retryTopicOf(c), deadLetterTopicOf(c)])];
    await withAdmin(async (admin) => {
      const existing = new Set(await admin.listTopics());
      const doomed = topics.filter((t) => existing.has(t));
      if (doomed.length > 0) await admin.deleteTopics({ topics: doomed, timeout: 30_000 });
      await admin.deleteGroups(consumers).catch(() => undefined);
    }).catch((error: unknown) => process.stderr.write(`could not delete Kafka test topics: ${String(error)}\n`));
  }, 240_000);

  const create = (): KafkaBroker => names.watch(createKafkaBroker());
  return {
    name: 'kafka',
    broker: 'kafka',
    features: create().features,
    env: { KAFKA_BROKERS: `${KAFKA_HOST}:${KAFKA_PORT}` },
    create,
    async restart({ downMs }) {
      restarted = true;
      await restartKafka(downMs);
    },
    async ensureUp() {
      if (!(await reachable(KAFKA_HOST, KAFKA_PORT))) throw new Error(`Kafka is not reachable on ${KAFKA_HOST}:${KAFKA_PORT}`);
    },
    publishForeign: publishWithKafkajs,
    tap: tapKafka,
    newTopic: names.newTopic,
    newConsumer: names.newConsumer,
    // Topic creation, group joins and a retry's round trip through `<consumer>.retry` take
    // seconds, and a member that lost its group in a restart waits out the session timeout.
    timeoutMs: 30_000,
  };
}

/** Reads the whole topic with a plain consumer group once the outbox is drained. */
async function tapKafka(topic: string): Promise<PublishTap> {
  return {
    async collect(timeoutMs) {
      // The high watermarks say how many records Kafka holds; read them all from the start.
      const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
      const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
      const consumer = plainKafka().consumer({ groupId: uniqueName('tap'), maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
      const copies = new Map<string, number>();
      let seen = 0;
      await consumer.connect();
      try {
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            const id = (JSON.parse(message.value!.toString()) as { id: string }).id;
            copies.set(id, (copies.get(id) ?? 0) + 1);
            seen++;
          },
        });
        await waitFor(() => seen >= total, timeoutMs, `${total} records from Kafka`);
      } finally {
        await consumer.disconnect();
      }
      return copies;
    },
    close: async () => undefined,
  };
}
