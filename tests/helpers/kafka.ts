import { afterAll, beforeAll } from 'vitest';
import kafkajs, { type Admin, type Kafka, type KafkaMessage } from 'kafkajs';
import { harnessSettings, silentLog, startKafka as harnessStartKafka, stopKafka as harnessStopKafka, withKafkaLock } from '../../scripts/brokers/index.js';
import { KafkaBroker, type KafkaBrokerOptions } from '../../src/brokers/kafka/kafka-broker.js';
import { createLogger, silentLogger, type Logger } from '../../src/util/logger.js';
import { uniqueName, waitFor } from './events.js';

const { Kafka: KafkaClient, logLevel } = kafkajs;

/** The Kafka of the broker harness (scripts/brokers/): 127.0.0.1:9092 unless `KAFKA_BROKERS` says otherwise. */
const harness = harnessSettings();
export const KAFKA_HOST = harness.kafka.host;
export const KAFKA_PORT = harness.kafka.port;

/** Adapter options as `loadConfig` would build them, with a client id per test. */
export function kafkaOptions(overrides: Partial<KafkaBrokerOptions> = {}): KafkaBrokerOptions {
  return {
    brokers: [`${KAFKA_HOST}:${KAFKA_PORT}`],
    clientId: uniqueName('gw'),
    partitions: 3,
    compression: 'none',
    topics: {},
    ...overrides,
  };
}

/** Silent, unless KAFKA_TEST_LOG names a level (e.g. `KAFKA_TEST_LOG=info`) to watch the adapter. */
export const kafkaTestLogger: Logger = process.env['KAFKA_TEST_LOG'] ? createLogger(process.env['KAFKA_TEST_LOG'] as 'info') : silentLogger;

export function createKafkaBroker(overrides: Partial<KafkaBrokerOptions> = {}, logger: Logger = kafkaTestLogger): KafkaBroker {
  return new KafkaBroker(kafkaOptions(overrides), logger);
}

/** A plain kafkajs client, as another service would use it: no gateway code involved. */
export function plainKafka(): Kafka {
  return new KafkaClient({ clientId: uniqueName('plain'), brokers: [`${KAFKA_HOST}:${KAFKA_PORT}`], logLevel: logLevel.NOTHING });
}

export async function withAdmin<T>(use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = plainKafka().admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Reads a topic from the beginning with a plain consumer until `count` records arrived. */
export async function readTopic(topic: string, count: number, timeoutMs = 30_000): Promise<(KafkaMessage & { partition: number })[]> {
  const consumer = plainKafka().consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 200, allowAutoTopicCreation: false });
  const records: (KafkaMessage & { partition: number })[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message, partition }) => void records.push({ ...message, partition }) });
    await waitFor(() => records.length >= count, timeoutMs, `${count} records on ${topic}`);
    return records;
  } finally {
    await consumer.disconnect();
  }
}

export const headerText = (message: KafkaMessage, name: string): string | undefined => message.headers?.[name]?.toString();

/**
 * Starts the harness's Kafka (`npm run brokers start-kafka`) and resolves once clients can work
 * with it; does nothing to a Kafka that is up. Asynchronous all the way, so the clients under test
 * keep running meanwhile.
 */
export const startKafka = (): Promise<void> => withKafkaLock(harness, () => harnessStartKafka(harness.kafka, silentLog));

/** Stops the harness's Kafka (`npm run brokers stop-kafka`); `kill` sends SIGKILL, as a crash would. Resolves once its ports are closed. */
export const stopKafka = ({ kill = false } = {}): Promise<void> => withKafkaLock(harness, () => harnessStopKafka(harness.kafka, { kill }, silentLog));

/**
 * Stops Kafka for `downMs`, then starts it; whatever happens, Kafka is started again before this
 * returns. Holds the harness's lock throughout, so another test run's global setup waits for the
 * restart rather than bringing Kafka back in the middle of the outage.
 */
export function restartKafka(downMs = 0): Promise<void> {
  return withKafkaLock(harness, async () => {
    try {
      await harnessStopKafka(harness.kafka, {}, silentLog);
      await new Promise((resolve) => setTimeout(resolve, downMs));
    } finally {
      await harnessStartKafka(harness.kafka, silentLog);
    }
  });
}

/**
 * A KafkaBroker that records which topics' fan-out subscriptions are live, so a test can publish
 * only once a GraphQL subscription can no longer miss the event.
 */
export class ObservedKafkaBroker extends KafkaBroker {
  readonly liveTopics = new Set<string>();

  override async subscribe(...[topic, onEvent, options]: Parameters<KafkaBroker['subscribe']>) {
    const subscription = await super.subscribe(topic, onEvent, options);
    this.liveTopics.add(topic);
    return {
      log: subscription.log,
      start: subscription.start,
      close: async () => {
        this.liveTopics.delete(topic);
        await subscription.close();
      },
    };
  }
}

/**
 * Deletes, after the file's tests, every Kafka topic they created. Each test makes its own
 * topics (and `.retry`/`.dlq` topics per consumer); left behind, they pile up in the local
 * store run after run and make every Kafka restart slower.
 */
export function deleteTopicsCreatedByThisFile(): void {
  let before: Set<string> | undefined;
  beforeAll(async () => {
    before = new Set(await withAdmin((admin) => admin.listTopics()));
  });
  afterAll(async () => {
    if (!before) return;
    const known = before;
    await withAdmin(async (admin) => {
      const created = (await admin.listTopics()).filter((topic) => !known.has(topic));
      if (created.length > 0) await admin.deleteTopics({ topics: created, timeout: 30_000 });
    }).catch((error: unknown) => process.stderr.write(`could not delete test topics: ${String(error)}\n`));
  }, 60_000);
}
