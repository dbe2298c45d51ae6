/**
 * `npm run brokers <command>`: local message brokers for event-gateway's tests, no Docker needed.
 */
import { fileURLToPath } from 'node:url';
import { kafkaJarsResolved, kafkaToolInteractive } from './kafka-install.js';
import { brokersStatus, brokersUp, harnessSettings, HarnessError, printLog, resetKafka, startKafka, statusLine, stopKafka, withKafkaLock } from './index.js';

const USAGE = `usage: npm run brokers <command>   (options for the command after a --: npm run brokers -- stop-kafka --kill)

  up            ensure RabbitMQ, NATS JetStream, PostgreSQL and Kafka all answer
  status        one line per broker, asked with its own client (exit 1 if any does not answer)
  down          stop the Kafka this harness started (RabbitMQ/NATS/PostgreSQL untouched)
  start-kafka   only the Kafka part of \`up\`
  stop-kafka [--kill]
                = down; --kill sends SIGKILL at once (simulates a crash)
  restart-kafka [--kill]
                stop-kafka then start-kafka
  reset         stop our Kafka and delete its data (topics, offsets)
  tool CLASS [ARGS]
                run a Kafka CLI tool from the cached jars, e.g.
                tool TopicCommand --bootstrap-server 127.0.0.1:9092 --list
                tool consumer.group.ConsumerGroupCommand --bootstrap-server 127.0.0.1:9092 --list

Kafka's data survives down/up (the KRaft store is formatted only once); reset wipes it.

Environment: KAFKA_BROKERS, RABBITMQ_URL, NATS_URL, TEST_POSTGRES_URL (addresses; defaults
127.0.0.1:9092, amqp://guest:guest@127.0.0.1:5672, nats://127.0.0.1:4222,
postgres://postgres@127.0.0.1:5432/postgres), KAFKA_CONTROLLER_PORT (9093),
EVENT_GATEWAY_CACHE (~/.cache/event-gateway: jars, KRaft data, kafka.pid, kafka.log),
KAFKA_VERSION (4.4.0), LOG4J_VERSION (2.26.1), KAFKA_START_TIMEOUT (90 s),
KAFKA_STOP_TIMEOUT (30 s), KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, JAVA_HOME.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const settings = harnessSettings();
  const { kafka } = settings;
  const kill = args.includes('--kill');
  switch (command) {
    case 'up':
      await brokersUp(settings, printLog);
      return 0;
    case 'start-kafka':
      await withKafkaLock(settings, () => startKafka(kafka, printLog));
      return 0;
    case 'down':
    case 'stop-kafka':
      await withKafkaLock(settings, () => stopKafka(kafka, { kill }, printLog));
      return 0;
    case 'restart-kafka':
      await withKafkaLock(settings, async () => {
        await stopKafka(kafka, { kill }, printLog);
        await startKafka(kafka, printLog);
      });
      return 0;
    case 'reset':
      await withKafkaLock(settings, () => resetKafka(kafka, printLog));
      return 0;
    case 'status': {
      const rows = await brokersStatus(settings);
      for (const row of rows) printLog(statusLine(row));
      return rows.every((row) => row.problem === undefined) ? 0 : 1;
    }
    case 'tool': {
      const [name, ...rest] = args;
      if (!name) throw new HarnessError('usage: npm run brokers tool <class in org.apache.kafka.tools> [args...]');
      if (!kafkaJarsResolved(kafka)) throw new HarnessError(`kafka: no jars in ${kafka.libs} yet; run 'npm run brokers up' first`);
      const mainClass = name.startsWith('org.') || name.startsWith('kafka.') ? name : `org.apache.kafka.tools.${name}`;
      return kafkaToolInteractive(kafka, mainClass, rest);
    }
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`brokers: ${error instanceof HarnessError ? error.message : String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
}
