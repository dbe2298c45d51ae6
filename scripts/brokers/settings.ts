/**
 * Where the test brokers are and how the local Kafka is run: read once from the environment, so
 * that `npm run brokers`, vitest's global setup and the test helpers agree.
 *
 * The addresses use the gateway's own variable names (`KAFKA_BROKERS`, `RABBITMQ_URL`,
 * `NATS_URL`), so a gateway process a test spawns with the test's environment meets the same
 * brokers the test checks. PostgreSQL is `TEST_POSTGRES_URL`: `DATABASE_URL` would switch every
 * spawned gateway to PostgreSQL.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Env = Record<string, string | undefined>;

export interface KafkaSettings {
  /** org.apache.kafka:kafka_2.13 version. @default '4.4.0' (`KAFKA_VERSION`) */
  readonly version: string;
  /** log4j2 version for the broker's logging. @default '2.26.1' (`LOG4J_VERSION`) */
  readonly log4jVersion: string;
  readonly host: string;
  /** The client listener, from the first of `KAFKA_BROKERS`. @default 9092 */
  readonly port: number;
  /** The KRaft controller listener. @default 9093 (`KAFKA_CONTROLLER_PORT`) */
  readonly controllerPort: number;
  /** Per version, since jars and KRaft data differ: `<cache>/kafka-<version>`. */
  readonly home: string;
  readonly libs: string;
  readonly data: string;
  readonly config: string;
  /** Not per version, so that `down` finds the broker whatever `KAFKA_VERSION` says. */
  readonly pidFile: string;
  readonly logFile: string;
  /** Serialises `up`, `down` and restarts across processes (parallel test runs). */
  readonly lockFile: string;
  /** @default 90 s (`KAFKA_START_TIMEOUT`, in seconds) */
  readonly startTimeoutMs: number;
  /** Between SIGTERM and SIGKILL. @default 30 s (`KAFKA_STOP_TIMEOUT`, in seconds) */
  readonly stopTimeoutMs: number;
  /** @default '-Xmx512m -Xms256m' (`KAFKA_HEAP_OPTS`) */
  readonly heapOpts: string[];
  /**
   * G1 with a short pause goal as in Kafka's own kafka-run-class.sh, plus C1-only JIT: on 2 cores
   * it cuts the broker's start from ~8 to ~5 CPU-seconds (about 1 s of wall time per restart) at
   * some cost in peak throughput, which tests don't need. (`KAFKA_JVM_PERFORMANCE_OPTS`)
   */
  readonly jvmOpts: string[];
  /** Kafka 4.x needs Java 17+. `$JAVA_HOME/bin/java`, else `java` from the PATH. */
  readonly java: string;
}

export interface HarnessSettings {
  /** Outside the git clone: it is big, and CI clones afresh. @default ~/.cache/event-gateway (`EVENT_GATEWAY_CACHE`) */
  readonly cacheDir: string;
  readonly kafka: KafkaSettings;
  /** @default 'amqp://guest:guest@127.0.0.1:5672' (`RABBITMQ_URL`) */
  readonly rabbitmqUrl: string;
  /** A nats-server with JetStream. @default 'nats://127.0.0.1:4222' (`NATS_URL`) */
  readonly natsUrl: string;
  /** A server on which the store tests create and drop a database per test. @default 'postgres://postgres@127.0.0.1:5432/postgres' (`TEST_POSTGRES_URL`) */
  readonly postgresUrl: string;
}

/** The pom, broker config and log4j configs the harness runs Kafka with. */
export const KAFKA_ASSETS = fileURLToPath(new URL('../kafka/', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const words = (value: string) => value.split(/\s+/).filter(Boolean);
const seconds = (value: string | undefined, fallback: number) => 1000 * (value ? Number(value) : fallback);

export function harnessSettings(env: Env = process.env): HarnessSettings {
  const cacheDir = env['EVENT_GATEWAY_CACHE'] || join(homedir(), '.cache', 'event-gateway');
  const version = env['KAFKA_VERSION'] || '4.4.0';
  const home = join(cacheDir, `kafka-${version}`);
  const [host = '127.0.0.1', port = '9092'] = (env['KAFKA_BROKERS'] || '127.0.0.1:9092').split(',')[0]!.trim().split(':');
  return {
    cacheDir,
    kafka: {
      version,
      log4jVersion: env['LOG4J_VERSION'] || '2.26.1',
      host,
      port: Number(port),
      controllerPort: Number(env['KAFKA_CONTROLLER_PORT'] || 9093),
      home,
      libs: join(home, 'libs'),
      data: join(home, 'data'),
      config: join(home, 'server.properties'),
      pidFile: join(cacheDir, 'kafka.pid'),
      logFile: join(cacheDir, 'kafka.log'),
      lockFile: join(cacheDir, 'brokers.lock'),
      startTimeoutMs: seconds(env['KAFKA_START_TIMEOUT'], 90),
      stopTimeoutMs: seconds(env['KAFKA_STOP_TIMEOUT'], 30),
      heapOpts: words(env['KAFKA_HEAP_OPTS'] || '-Xmx512m -Xms256m'),
      jvmOpts: words(
        env['KAFKA_JVM_PERFORMANCE_OPTS'] ||
          '-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1',
      ),
      java: env['JAVA_HOME'] ? join(env['JAVA_HOME'], 'bin', 'java') : 'java',
    },
    rabbitmqUrl: env['RABBITMQ_URL'] || 'amqp://guest:guest@127.0.0.1:5672',
    natsUrl: env['NATS_URL'] || 'nats://127.0.0.1:4222',
    postgresUrl: env['TEST_POSTGRES_URL'] || 'postgres://postgres@127.0.0.1:5432/postgres',
  };
}

/** host and port of a URL, with the scheme's default port. */
export function endpoint(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || defaultPort) };
}
