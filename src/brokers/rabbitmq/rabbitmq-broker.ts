import type { ChannelModel } from 'amqplib';
import { hostname } from 'node:os';
import type { BrokerSettings } from '../../config/config.js';
import { BrokerUnavailableError, ConfigError, errorMessage, GatewayError, PublishError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';
import type { BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type {
  Broker,
  BrokerConnectionStatus,
  BrokerFeatures,
  ConsumerBinding,
  ConsumerHandle,
  DeliverySink,
  Subscription,
} from '../broker.js';
import { RabbitMqConnection } from './connection.js';
import { DurableConsumer } from './consumer.js';
import { isPermanent } from './errors.js';
import { Publisher } from './publisher.js';
import { FanOutSubscription } from './subscription.js';
import { Topology } from './topology.js';

export interface RabbitMqTuning {
  /**
   * Delays between reconnect attempts, and between attempts to set a consumer or subscription up
   * again after the broker closed its channel.
   * @default { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 }
   */
  reconnect?: BackoffPolicy;
  /**
   * A published event RabbitMQ has not confirmed after this long counts as failed (the relay
   * publishes it again later), e.g. while a resource alarm blocks publishers.
   * @default 30000
   */
  confirmTimeoutMs?: number;
  /**
   * The connection's name in RabbitMQ's management UI and `rabbitmqctl list_connections`.
   * @default `event-gateway <hostname> pid <pid>`
   */
  connectionName?: string;
}

export type RabbitMqBrokerOptions = BrokerSettings['rabbitmq'] & { topics: BrokerSettings['topics'] } & RabbitMqTuning;

/**
 * The gateway on RabbitMQ (amqplib, AMQP 0-9-1): events go to a durable topic exchange under
 * `<topic>.<type>` with publisher confirms; durable consumers are durable queues with delayed
 * retries through TTL'd retry queues and a `<consumer>.dlq`; fan-out subscriptions are exclusive
 * auto-delete queues. See `Topology` for every name.
 */
export class RabbitMqBroker implements Broker {
  readonly kind = 'rabbitmq';
  readonly features: BrokerFeatures = {
    persistent: true,
    sharedConsumers: true,
    orderedByKey: true,
    publishDeduplication: false,
    lag: true,
    durableConsumers: true,
  };
  private readonly logger: Logger;
  private readonly topology: Topology;
  private readonly connection: RabbitMqConnection;
  private readonly publisher: Publisher;
  private readonly consumers = new Set<DurableConsumer>();
  private readonly subscriptions = new Set<FanOutSubscription>();
  private closed = false;

  constructor(options: RabbitMqBrokerOptions, logger: Logger) {
    this.logger = logger.child({ broker: 'rabbitmq' });
    this.topology = new Topology(options.exchange, options.topics);
    this.connection = new RabbitMqConnection(
      {
        url: options.url,
        connectionName: options.connectionName ?? `event-gateway ${hostname()} pid ${process.pid}`,
        reconnect: options.reconnect ?? { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 },
        setUp: (model) => this.setUp(model),
      },
      this.logger,
    );
    this.publisher = new Publisher(this.connection, this.logger.child({ component: 'publisher' }), this.topology, options.confirmTimeoutMs ?? 30_000);
  }

  async connect(): Promise<void> {
    this.assertOpen();
    await this.connection.connect();
  }

  async publish(events: readonly GatewayEvent[]): Promise<void> {
    this.assertOpen();
    if (events.length === 0) return;
    if (!this.connection.status().connected) {
      throw PublishError.forAll(events, this.notConnected());
    }
    await this.publisher.publish(events);
  }

  async subscribe(topic: string, onEvent: (event: GatewayEvent) => void): Promise<Subscription> {
    this.assertOpen();
    const subscription = new FanOutSubscription(this.connection, this.logger, this.topology, topic, onEvent);
    await this.start(subscription, this.subscriptions);
    return {
      close: async () => {
        this.subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    this.assertOpen();
    const consumer = new DurableConsumer(this.connection, this.logger, this.topology, binding, sink);
    await this.start(consumer, this.consumers);
    return {
      lag: () => consumer.lag(),
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.close();
      },
    };
  }

  async redeliver(binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    this.assertOpen();
    if (!this.connection.status().connected) throw this.notConnected();
    // The queue may not exist yet (or was deleted): declare it, with its bindings, before sending.
    await this.connection.withChannel((channel) => this.topology.declareConsumer(channel, binding));
    try {
      await this.publisher.sendToQueue(binding.name, event);
    } catch (error) {
      throw new BrokerUnavailableError(`could not redeliver event ${event.id} to queue "${binding.name}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  status(): BrokerConnectionStatus {
    return this.connection.status();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const consumers = [...this.consumers];
    const subscriptions = [...this.subscriptions];
    this.consumers.clear();
    this.subscriptions.clear();
    await Promise.all(consumers.map((consumer) => consumer.close()));
    await Promise.all(subscriptions.map((subscription) => subscription.close()));
    await this.publisher.close();
    await this.connection.close();
  }

  /**
   * Every new connection: the publisher (which declares the exchange) must come up, then every
   * consumer and subscription is attached again. Publishing resumes only after that, so fan-out
   * queues are bound before the first event goes out. A part that fails retries on its own.
   */
  private async setUp(model: ChannelModel): Promise<void> {
    await this.publisher.attach(model);
    const parts: (DurableConsumer | FanOutSubscription)[] = [...this.consumers, ...this.subscriptions];
    await Promise.all(
      parts.map((part) =>
        part.attach(model).catch((error: unknown) => {
          this.logger.error({ err: error }, 'could not set a consumer or subscription up again after reconnecting; retrying');
          part.retryLater();
        }),
      ),
    );
  }

  /**
   * Attaches a new part now when connected (the next connection does otherwise). A refusal no
   * retry can fix (a queue declared with other arguments) is the caller's error; anything else
   * is retried in the background.
   */
  private async start<P extends DurableConsumer | FanOutSubscription>(part: P, registry: Set<P>): Promise<void> {
    registry.add(part);
    const model = this.connection.current();
    if (!model) return;
    try {
      await part.attach(model);
    } catch (error) {
      if (isPermanent(error)) {
        registry.delete(part);
        await part.close();
        throw error instanceof GatewayError ? error : new ConfigError(`RabbitMQ refused: ${errorMessage(error)}`, { cause: error });
      }
      this.logger.warn({ err: error }, 'could not set up a consumer or subscription yet; retrying');
      part.retryLater();
    }
  }

  private notConnected(): BrokerUnavailableError {
    const { lastError } = this.connection.status();
    return new BrokerUnavailableError(`RabbitMQ is not connected${lastError ? `: ${lastError}` : ''}`);
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('the RabbitMQ broker is closed');
  }
}
