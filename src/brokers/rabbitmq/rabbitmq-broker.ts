import type { ChannelModel } from 'amqplib';
import { hostname } from 'node:os';
import { SETTING_DEFAULTS, type BrokerSettings } from '../../config/config.js';
import { BrokerUnavailableError, ConfigError, CursorExpiredError, errorMessage, GatewayError, InvalidCursorError, PublishError } from '../../errors.js';
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
  FanOutOptions,
  LogPosition,
  Subscription,
} from '../broker.js';
import { RabbitMqConnection } from './connection.js';
import { DurableConsumer } from './consumer.js';
import { isPermanent } from './errors.js';
import { Publisher } from './publisher.js';
import { StreamSubscription } from './subscription.js';
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
  /**
   * How long a topic's stream keeps its events for subscribers that resume (`x-max-age`: a number
   * and one of the units Y, M, D, h, m, s). A topic's `ttlMs` takes its place for that topic.
   * Changing it for an existing stream makes RabbitMQ refuse the declaration: delete the stream.
   * @default the default of `RABBITMQ_STREAM_MAX_AGE`
   */
  streamMaxAge?: string;
  /**
   * Size of a stream's segment files (`x-stream-max-segment-size-bytes`). Retention drops whole
   * segments, the one being written never, so a quiet topic keeps events past `streamMaxAge`
   * until its segment fills; smaller segments let them go sooner.
   * @default 8000000
   */
  streamMaxSegmentSizeBytes?: number;
}

export type RabbitMqBrokerOptions = Omit<BrokerSettings['rabbitmq'], keyof RabbitMqTuning> & { topics: BrokerSettings['topics'] } & RabbitMqTuning;

/**
 * The gateway on RabbitMQ (amqplib, AMQP 0-9-1): events go to a durable topic exchange under
 * `<topic>.<type>` with publisher confirms; durable consumers are durable queues with delayed
 * retries through TTL'd retry queues and a `<consumer>.dlq`; fan-out subscriptions read a stream
 * queue per topic, whose offsets are their log positions, on a second connection opened with the
 * first subscription. See `Topology` for every name.
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
    replay: true,
  };
  private readonly logger: Logger;
  private readonly topology: Topology;
  private readonly connection: RabbitMqConnection;
  /**
   * Subscriptions' own connection: RabbitMQ answers some mistakes on a stream consumer (`noAck`,
   * an offset of the wrong type) by closing the whole connection, which must not take the
   * publisher and the durable consumers with it. Opened with the first subscription.
   */
  private readonly subscriptionConnection: RabbitMqConnection;
  private subscriptionsConnecting: Promise<void> | undefined;
  private readonly publisher: Publisher;
  private readonly consumers = new Set<DurableConsumer>();
  private readonly subscriptions = new Set<StreamSubscription>();
  private closed = false;

  constructor(options: RabbitMqBrokerOptions, logger: Logger) {
    this.logger = logger.child({ broker: 'rabbitmq' });
    this.topology = new Topology(options.exchange, options.topics, {
      maxAge: options.streamMaxAge ?? SETTING_DEFAULTS.brokers.rabbitmq.streamMaxAge,
      maxSegmentSizeBytes: options.streamMaxSegmentSizeBytes ?? 8_000_000,
    });
    const connectionName = options.connectionName ?? `event-gateway ${hostname()} pid ${process.pid}`;
    const reconnect = options.reconnect ?? { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.2 };
    const { url, tls, password } = options;
    this.connection = new RabbitMqConnection({ url, tls, password, connectionName, reconnect, setUp: (model) => this.setUp(model) }, this.logger);
    this.subscriptionConnection = new RabbitMqConnection(
      {
        url,
        tls,
        password,
        connectionName: `${connectionName} (subscriptions)`,
        reconnect,
        setUp: (model) => this.attachAll(model, this.subscriptions),
      },
      this.logger.child({ component: 'subscriptions' }),
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

  /**
   * A consumer of the topic's stream (`StreamSubscription`). With `after`, resolves only once the
   * stream showed that it still holds every event after the point, which needs RabbitMQ now:
   * rejects with `BrokerUnavailableError` while it is not connected.
   */
  async subscribe(topic: string, onEvent: (event: GatewayEvent, position: LogPosition) => void, options: FanOutOptions = {}): Promise<Subscription> {
    this.assertOpen();
    const after = options.after ? this.resumePoint(topic, options.after) : undefined;
    await this.openSubscriptionConnection();
    if (after !== undefined && !this.subscriptionConnection.status().connected) throw this.notConnected(this.subscriptionConnection);
    const subscription = new StreamSubscription(this.subscriptionConnection, this.logger, this.topology, topic, onEvent, after);
    await this.start(subscription, this.subscriptions, this.subscriptionConnection);
    try {
      await subscription.resumed();
    } catch (error) {
      this.subscriptions.delete(subscription);
      await subscription.close();
      throw error;
    }
    return {
      log: subscription.log,
      start: subscription.start,
      close: async () => {
        this.subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    this.assertOpen();
    const consumer = new DurableConsumer(this.connection, this.logger, this.topology, binding, sink);
    await this.start(consumer, this.consumers, this.connection);
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
    await this.subscriptionConnection.close();
    await this.publisher.close();
    await this.connection.close();
  }

  /**
   * Every new connection: the publisher (which declares the exchange) must come up, then every
   * consumer is attached again. Publishing resumes only after that.
   */
  private async setUp(model: ChannelModel): Promise<void> {
    await this.publisher.attach(model);
    await this.attachAll(model, this.consumers);
  }

  /** Attaches every part to a new connection; a part that fails retries on its own. */
  private async attachAll(model: ChannelModel, parts: Iterable<DurableConsumer | StreamSubscription>): Promise<void> {
    await Promise.all(
      [...parts].map((part) =>
        part.attach(model).catch((error: unknown) => {
          this.logger.error({ err: error }, 'could not set a consumer or subscription up again after reconnecting; retrying');
          part.retryLater();
        }),
      ),
    );
  }

  /**
   * Opens the subscriptions' connection with the first subscription. Waits for it while RabbitMQ
   * is reachable; otherwise the subscription is attached by the reconnect, like every other part.
   */
  private async openSubscriptionConnection(): Promise<void> {
    if (!this.subscriptionsConnecting) {
      this.subscriptionsConnecting = this.subscriptionConnection.connect();
      // Read by every subscribe that waits for it; nobody may be waiting when it fails for good.
      this.subscriptionsConnecting.catch((error: unknown) => this.logger.error({ err: error }, 'could not open the RabbitMQ connection for subscriptions'));
    }
    if (this.connection.status().connected) await this.subscriptionsConnecting;
  }

  /**
   * The offset a cursor for `topic` resumes after: -1 where the point names no offset (from the
   * stream's beginning). A point in another log is refused as expired, whatever its offsets.
   */
  private resumePoint(topic: string, after: NonNullable<FanOutOptions['after']>): number {
    const log = this.topology.streamQueue(topic);
    if (after.log !== log) {
      throw new CursorExpiredError(`the cursor belongs to another log ("${after.log}"), not to RabbitMQ stream "${log}"; subscribe without it`);
    }
    const offset = after.point[''];
    if (offset === undefined) return -1;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidCursorError(`cursor offset ${offset} is not a stream offset`);
    return offset;
  }

  /**
   * Attaches a new part now when its connection is up (the next connection does otherwise). A
   * refusal no retry can fix (a queue declared with other arguments) is the caller's error;
   * anything else is retried in the background.
   */
  private async start<P extends DurableConsumer | StreamSubscription>(part: P, registry: Set<P>, connection: RabbitMqConnection): Promise<void> {
    registry.add(part);
    const model = connection.current();
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

  private notConnected(connection = this.connection): BrokerUnavailableError {
    const { lastError } = connection.status();
    return new BrokerUnavailableError(`RabbitMQ is not connected${lastError ? `: ${lastError}` : ''}`);
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('the RabbitMQ broker is closed');
  }
}
