import { afterAll } from 'vitest';
import { reachable, requireBroker } from '../helpers/brokers.js';
import { brokersScript, createKafkaBroker, deleteTopicsCreatedByThisFile, KAFKA_HOST, KAFKA_PORT, restartKafka } from '../helpers/kafka.js';
import { defineConformanceSuite } from './suite.js';

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  // Whatever happened to a restart (a timed-out test abandons it), leave Kafka running.
  afterAll(() => brokersScript('start-kafka'), 200_000);

  defineConformanceSuite({
    name: 'kafka',
    features: createKafkaBroker().features,
    create: () => createKafkaBroker(),
    restart: ({ downMs }) => restartKafka(downMs),
    async ensureUp() {
      if (!(await reachable(KAFKA_HOST, KAFKA_PORT))) throw new Error(`Kafka is not reachable on ${KAFKA_HOST}:${KAFKA_PORT}`);
    },
    // Topic creation, group joins and a retry's round trip through `<consumer>.retry` take
    // seconds, and a member that lost its group in a restart waits out the session timeout.
    timeoutMs: 30_000,
  });
}
