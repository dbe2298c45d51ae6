/**
 * The broker harness: the brokers event-gateway's tests run against, brought up and checked the
 * same way by `npm run brokers` (cli.ts), vitest's global setup (global-setup.ts) and the tests
 * that restart Kafka (tests/helpers/kafka.ts).
 *
 * Addresses: RabbitMQ 127.0.0.1:5672, NATS 127.0.0.1:4222, Kafka 127.0.0.1:9092 (its KRaft
 * controller on 127.0.0.1:9093), PostgreSQL 127.0.0.1:5432; see settings.ts for the variables
 * that move them. RabbitMQ, NATS and PostgreSQL come with the machine. Kafka is an Apache Kafka
 * 4.x broker run straight from Maven Central jars, cached outside the clone.
 */
import { kafkaStatus, startKafka, withKafkaLock } from './kafka.js';
import { HarnessError, type Log } from './log.js';
import { ensureService, services } from './services.js';
import type { HarnessSettings } from './settings.js';

export { kafkaPid, resetKafka, startKafka, stopKafka, withKafkaLock } from './kafka.js';
export { HarnessError, printLog, silentLog, type Log } from './log.js';
export { natsProblem, rabbitmqctl, sharedNatsServerArgs, startSharedNatsServer, NATS_SERVER } from './services.js';
export { harnessSettings, type HarnessSettings, type KafkaSettings } from './settings.js';

/**
 * Makes every broker answer: reuses what listens, starts what is missing (the machine's services
 * with its own commands, Kafka from the cached jars). Rejects with a HarnessError per broker that
 * could not be brought up, after trying them all.
 */
export async function brokersUp(settings: HarnessSettings, log: Log): Promise<void> {
  const problems: string[] = [];
  for (const service of services(settings)) {
    await ensureService(service, log).catch((error: unknown) => problems.push(message(error)));
  }
  await withKafkaLock(settings, () => startKafka(settings.kafka, log)).catch((error: unknown) => problems.push(message(error)));
  if (problems.length > 0) throw new HarnessError(problems.join('\n'));
}

export interface BrokerStatus {
  readonly name: string;
  readonly address: string;
  /** Undefined when the broker works; else what its client said. */
  readonly problem: string | undefined;
  readonly note: string;
}

/** Asks each broker with its real client (kafkajs, amqplib, @nats-io with JetStream, postgres.js `select 1`). */
export async function brokersStatus(settings: HarnessSettings): Promise<BrokerStatus[]> {
  const rows = await Promise.all(
    services(settings).map(async (service): Promise<BrokerStatus> => {
      const problem = await service.problem();
      return { name: service.name, address: `${service.host}:${service.port}`, problem, note: problem ? `NOT reachable: ${problem}` : 'reachable' };
    }),
  );
  const kafka = await kafkaStatus(settings.kafka);
  rows.push({ name: 'kafka', address: `${settings.kafka.host}:${settings.kafka.port}`, problem: kafka.ok ? undefined : kafka.line, note: kafka.line });
  return rows;
}

export const statusLine = (row: BrokerStatus) => `${row.name.padEnd(9)} ${row.address}  ${row.note}`;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
