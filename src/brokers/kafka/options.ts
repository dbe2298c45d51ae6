import { type BrokerSettings, kafkaBrokerAddress, kafkaCompression, kafkaPartitions } from '../../config/config.js';
import { ConfigError } from '../../errors.js';

/** What `KafkaBroker` needs: the `kafka` settings, the per-topic settings, and optional tuning. */
export type KafkaBrokerOptions = BrokerSettings['kafka'] & {
  readonly topics: BrokerSettings['topics'];
} & KafkaTuning;

/** Knobs with sensible defaults; tests shorten some of them. */
export interface KafkaTuning {
  /**
   * How long `consume()` and `subscribe()` wait for the group join before they resolve anyway
   * (logging a warning) and keep joining in the background, e.g. while the broker is down.
   * @default 30000
   */
  readonly readyTimeoutMs?: number;
  /**
   * Longest a fetch waits at the broker for new messages. Also bounds how long a rebalance or a
   * `close()` waits for an idle consumer's fetch to return.
   * @default 500
   */
  readonly fetchMaxWaitMs?: number;
  /**
   * Consumer group session timeout: a process that stops heartbeating for this long loses its
   * partitions to the others. Also how long a member that lost its membership in a Kafka restart
   * (kafkajs cannot rejoin under its old member id) waits for the stale one to expire.
   * @default 10000
   */
  readonly sessionTimeoutMs?: number;
  /**
   * Consumer heartbeat interval; also how soon a member notices that a rebalance started.
   * @default 1000
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * Retries of one Kafka operation (kafkajs backoff from 300 ms, doubling, capped at 5 s) before a
   * publish, topic creation or connection attempt fails. Bounds how long `publish()` can take
   * while the broker is down, so the relay's backoff and circuit breaker can act.
   * @default 5
   */
  readonly requestRetries?: number;
  /**
   * Retry-topic messages one consumer holds in memory until they are due; beyond this the retry
   * topic is paused until some are delivered.
   * @default 1000
   */
  readonly maxDelayedRetries?: number;
  /**
   * How often, when nothing else has shown whether Kafka answers, a metadata request checks it
   * for `status()`.
   * @default 5000
   */
  readonly probeIntervalMs?: number;
}

export type ResolvedKafkaOptions = KafkaBrokerOptions & Required<KafkaTuning>;

/**
 * Fills in defaults. The environment's settings were checked by the config schema; options built
 * in code (tests, embedding apps) are checked here with the same sub-schemas, since Kafka would
 * reject them later with a less helpful message.
 */
export function resolveKafkaOptions(options: KafkaBrokerOptions): ResolvedKafkaOptions {
  if (options.brokers.length === 0) throw new ConfigError('kafka.brokers: at least one host:port is required');
  for (const broker of options.brokers) {
    if (!kafkaBrokerAddress.safeParse(broker).success) throw new ConfigError(`kafka.brokers: "${broker}" is not host:port`);
  }
  if (!kafkaCompression.safeParse(options.compression).success) {
    throw new ConfigError(`kafka.compression: "${options.compression}" is not one of ${kafkaCompression.options.join(', ')}`);
  }
  if (!kafkaPartitions.safeParse(options.partitions).success) {
    throw new ConfigError(`kafka.partitions: ${options.partitions} is not an integer from 1 to 10000`);
  }
  const resolved: ResolvedKafkaOptions = {
    readyTimeoutMs: 30_000,
    fetchMaxWaitMs: 500,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 1000,
    requestRetries: 5,
    maxDelayedRetries: 1000,
    probeIntervalMs: 5000,
    ...options,
  };
  if (resolved.heartbeatIntervalMs >= resolved.sessionTimeoutMs) {
    throw new ConfigError('kafka heartbeatIntervalMs must be lower than sessionTimeoutMs');
  }
  return resolved;
}

/** Where a gateway topic and a durable consumer's own streams live on Kafka. */
export interface KafkaTopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** `retention.ms`, when the gateway topic has a `ttlMs`. */
  readonly retentionMs?: number | undefined;
}

/**
 * Gateway topics never contain dots (see `TOPIC_PATTERN`), so these names never equal one. Kafka
 * still treats "." and "_" as the same in topic names: a gateway topic `billing_retry` and the
 * retry topic of consumer `billing` cannot both exist (Kafka refuses the second to be created).
 */
export const retryTopicOf = (consumer: string): string => `${consumer}.retry`;
export const deadLetterTopicOf = (consumer: string): string => `${consumer}.dlq`;

/** The Kafka topic that carries a gateway topic: the same name. */
export function topicSpec(options: KafkaBrokerOptions, topic: string): KafkaTopicSpec {
  const settings = options.topics[topic];
  return { name: topic, partitions: settings?.partitions ?? options.partitions, retentionMs: settings?.ttlMs };
}

/**
 * A durable consumer's retry and dead-letter topics get the partition count of the topic it
 * consumes, so several processes share its retries as they share its messages. They keep the
 * broker's default retention: a retry must outlive its delay, and a dead letter is evidence.
 */
export function consumerTopicSpecs(options: KafkaBrokerOptions, consumer: string, topic: string): KafkaTopicSpec[] {
  const main = topicSpec(options, topic);
  return [main, { name: retryTopicOf(consumer), partitions: main.partitions }, { name: deadLetterTopicOf(consumer), partitions: main.partitions }];
}
