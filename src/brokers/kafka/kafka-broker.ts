import type { Admin, Kafka } from 'kafkajs';
import { BrokerUnavailableError, errorMessage, PublishError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import type {
  Broker,
  BrokerConnectionStatus,
  BrokerFeatures,
  ConsumerBinding,
  ConsumerHandle,
  DeliverySink,
  FanOutOptions,
  LogPosition,
  Subscription,
} from '../broker.js';
import { ConnectionMonitor } from './connection-monitor.js';
import { KafkaDurableConsumer } from './durable-consumer.js';
import { connectRefusal, isPermanentConnectError, isRejectedMessage, KafkaMessageRejectedError } from './errors.js';
import { KafkaFanOutSubscription } from './fan-out-subscription.js';
import { createKafkaClient, requestRetry } from './kafka-client.js';
import type { PartitionLag } from './lag.js';
import { eventMessage, redeliveryMessage } from './messages.js';
import { consumerTopicSpecs, resolveKafkaOptions, retryTopicOf, topicSpec, type KafkaBrokerOptions, type ResolvedKafkaOptions } from './options.js';
import { KafkaPublisher } from './publisher.js';
import { retryUntilDone } from '../../util/retrying.js';
import { TopicManager } from './topic-manager.js';

export type { KafkaBrokerOptions } from './options.js';
export type { PartitionLag } from './lag.js';

/** A durable consumer attachment; `lagByPartition` breaks `lag()` down per Kafka partition. */
export interface KafkaConsumerHandle extends ConsumerHandle {
  lag(): Promise<number>;
  lagByPartition(): Promise<PartitionLag[]>;
}

interface Connection {
  readonly options: ResolvedKafkaOptions;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly topics: TopicManager;
  readonly publisher: KafkaPublisher;
}

/**
 * Apache Kafka through kafkajs. One Kafka topic per gateway topic (same name); a durable consumer
 * is a consumer group named after it, with its own `<consumer>.retry` and `<consumer>.dlq`
 * topics; a fan-out subscription is an ephemeral group of its own. See the README's Kafka section
 * for the message format and guarantees.
 */
export class KafkaBroker implements Broker {
  readonly kind = 'kafka';
  readonly features: BrokerFeatures = {
    persistent: true,
    sharedConsumers: true,
    orderedByKey: true,
    // The idempotent producer only drops its own retries of one request, not a re-published id.
    publishDeduplication: false,
    lag: true,
    durableConsumers: true,
    // Positions are partition offsets; a subscription seeks to just after a cursor's.
    replay: true,
  };
  private readonly logger: Logger;
  private readonly monitor: ConnectionMonitor;
  private connection: Connection | undefined;
  private connecting: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly consumers = new Set<KafkaDurableConsumer>();
  private readonly subscriptions = new Set<KafkaFanOutSubscription>();
  private closed: Promise<void> | undefined;

  constructor(
    private readonly options: KafkaBrokerOptions,
    logger: Logger,
  ) {
    this.logger = logger.child({ broker: 'kafka' });
    this.monitor = new ConnectionMonitor(this.logger, options.probeIntervalMs ?? 5000);
  }

  /**
   * Rejects with `ConfigError` for bad options, with `BrokerAuthenticationError` when Kafka refuses
   * the SASL credentials or a TLS certificate; otherwise retries in the background until the
   * producer (with its producer id) and the admin client are connected.
   */
  connect(): Promise<void> {
    return (this.connecting ??= this.establish());
  }

  async publish(events: readonly GatewayEvent[]): Promise<void> {
    if (events.length === 0) return;
    const failures = new Map<string, Error>();
    let connection: Connection;
    try {
      connection = this.connected();
    } catch (error) {
      throw PublishError.forAll(events, error as Error);
    }
    const { publisher, topics, options } = connection;
    const byTopic = new Map<string, GatewayEvent[]>();
    for (const event of events) {
      const batch = byTopic.get(event.topic);
      if (batch) batch.push(event);
      else byTopic.set(event.topic, [event]);
    }
    // One send per topic: a topic that fails (cannot be created, refuses a record) does not fail
    // the others. Within a topic kafkajs reports one outcome for the whole request, although Kafka
    // may have appended some partitions of it: all its events count as failed, so a retry may
    // duplicate some (consumers skip those), never lose them.
    await Promise.all(
      [...byTopic].map(async ([topic, batch]) => {
        try {
          await topics.ensure([topicSpec(options, topic)]);
          await publisher.send(topic, batch.map(eventMessage));
        } catch (cause) {
          const failure = isRejectedMessage(cause)
            ? new KafkaMessageRejectedError(`Kafka refused events for topic ${topic}: ${errorMessage(cause)}`, { cause })
            : new BrokerUnavailableError(`Kafka did not confirm events for topic ${topic}: ${errorMessage(cause)}`, { cause });
          for (const event of batch) failures.set(event.id, failure);
        }
      }),
    );
    PublishError.throwIfAny(failures, events.length, 'Kafka');
  }

  async subscribe(topic: string, onEvent: (event: GatewayEvent, position: LogPosition) => void, options: FanOutOptions = {}): Promise<Subscription> {
    const subscription = new KafkaFanOutSubscription(topic, onEvent, { ...this.connected(), monitor: this.monitor, logger: this.logger }, options.after);
    this.subscriptions.add(subscription);
    try {
      await subscription.open();
    } catch (error) {
      this.subscriptions.delete(subscription);
      throw error;
    }
    return {
      log: subscription.log,
      start: subscription.start,
      close: async () => {
        await subscription.close();
        this.subscriptions.delete(subscription);
      },
    };
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<KafkaConsumerHandle> {
    const consumer = new KafkaDurableConsumer(binding, sink, { ...this.connected(), monitor: this.monitor, logger: this.logger });
    this.consumers.add(consumer);
    await consumer.start();
    return {
      lag: () => consumer.lag(),
      lagByPartition: () => consumer.lagByPartition(),
      close: async () => {
        await consumer.close();
        this.consumers.delete(consumer);
      },
    };
  }

  /** Writes the event to `<consumer>.retry`, due now, as attempt 1: only that group reads it. */
  async redeliver(binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    const { publisher, topics, options } = this.connected();
    await topics.ensure(consumerTopicSpecs(options, binding.name, binding.topic));
    await publisher.send(retryTopicOf(binding.name), [redeliveryMessage(event, binding.name)]);
  }

  status(): BrokerConnectionStatus {
    return this.monitor.status();
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutDown());
  }

  private async establish(): Promise<void> {
    let options: ResolvedKafkaOptions;
    try {
      options = resolveKafkaOptions(this.options);
    } catch (error) {
      this.monitor.note(error);
      throw error;
    }
    const kafka = createKafkaClient(options, this.logger);
    const admin = kafka.admin({ retry: requestRetry(options) });
    const publisher = new KafkaPublisher(kafka, options, this.monitor, this.logger);
    this.connection = { options, kafka, admin, publisher, topics: new TopicManager(admin, this.logger) };
    let permanent: unknown;
    const connected = await retryUntilDone(
      async () => {
        await admin.connect();
        await publisher.start();
        return true;
      },
      {
        signal: this.stopping.signal,
        onError: (error, attempt, retryInMs) => {
          if (isPermanentConnectError(error)) {
            permanent = error;
            this.stopping.abort();
            return;
          }
          this.monitor.failed(error);
          this.logger.warn({ err: error, brokers: options.brokers, attempt, retryInMs }, 'cannot reach kafka yet; retrying');
        },
      },
    );
    if (permanent !== undefined) {
      const refusal = connectRefusal(permanent, options);
      this.monitor.note(refusal);
      throw refusal;
    }
    if (!connected) throw new BrokerUnavailableError('the Kafka broker was closed before it connected');
    this.monitor.up();
    this.monitor.start(() => admin.describeCluster());
    this.logger.info({ brokers: options.brokers, clientId: options.clientId, compression: options.compression }, 'connected to kafka');
  }

  /** The clients, once `connect()` has created them; they reconnect by themselves after that. */
  private connected(): Connection {
    if (this.closed) throw new BrokerUnavailableError('the Kafka broker connection is closed');
    if (!this.connection) throw new BrokerUnavailableError('the Kafka broker is not connected; call connect() first');
    return this.connection;
  }

  private async shutDown(): Promise<void> {
    this.stopping.abort();
    await Promise.all([...this.consumers].map((consumer) => consumer.close()));
    await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
    await this.connecting?.catch(() => undefined);
    if (this.connection) {
      await this.connection.publisher.close();
      await this.connection.admin.disconnect().catch((error: unknown) => this.logger.debug({ err: error }, 'kafka admin disconnect failed'));
    }
    this.monitor.stop();
  }
}
