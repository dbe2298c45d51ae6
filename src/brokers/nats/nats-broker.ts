import { BrokerUnavailableError, PublishError } from '../../errors.js';
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
import { NatsConnector, type NatsSession } from './connection.js';
import { CoreMode, JetStreamMode, type NatsMode } from './modes.js';
import { resolveNatsOptions, type NatsBrokerOptions } from './options.js';

export type { NatsBrokerOptions } from './options.js';

/**
 * The NATS adapter, on the maintained `@nats-io/*` v3 client. With `jetstream: 'required'` (the
 * default) events go to a JetStream stream and durable consumers are JetStream pull consumers;
 * with `jetstream: 'off'` it runs on core NATS, at most once (see `features`). Subjects, stream
 * and consumers are described in `subjects.ts`, `stream.ts` and `consumer-config.ts`.
 */
export class NatsBroker implements Broker {
  readonly kind = 'nats';
  readonly features: BrokerFeatures;
  private readonly connector: NatsConnector;
  private readonly mode: NatsMode;
  private readonly consumers = new Set<ConsumerHandle>();
  private readonly subscriptions = new Set<Subscription>();
  private readonly publishing = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

  constructor(options: NatsBrokerOptions, logger: Logger) {
    const resolved = resolveNatsOptions(options);
    const log = logger.child({ broker: 'nats' });
    this.connector = new NatsConnector(resolved, (nc) => this.mode.prepare(nc), log);
    const deps = { connector: this.connector, options: resolved, logger: log };
    this.mode = resolved.jetstream === 'off' ? new CoreMode(deps) : new JetStreamMode(deps);
    this.features = this.mode.features;
  }

  /**
   * Resolves once connected and set up. Rejects with `BrokerCapabilityError` when JetStream is
   * required but the server has none, with `ConfigError` for credentials or a stream the server
   * refuses; a server that is merely down is retried with backoff meanwhile.
   */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new BrokerUnavailableError('the NATS broker is closed'));
    return this.connector.connect();
  }

  /** Fails at once, without waiting for a timeout, while NATS is not connected. */
  async publish(events: readonly GatewayEvent[]): Promise<void> {
    if (events.length === 0) return;
    const session = this.session();
    if (!session) {
      const reason = this.closing ? 'the NATS broker is closed' : `NATS is not connected (${this.connector.status().lastError ?? 'connecting'})`;
      throw PublishError.forAll(events, new BrokerUnavailableError(reason));
    }
    const publishing = this.mode.publish(session, events);
    this.publishing.add(publishing);
    try {
      await publishing;
    } finally {
      this.publishing.delete(publishing);
    }
  }

  /**
   * JetStream: positions are stream sequences, and while NATS is down this waits for the
   * connection (`log` and `start` need the stream). Core NATS: no positions; `after` is refused.
   */
  async subscribe(topic: string, onEvent: (event: GatewayEvent, position: LogPosition | null) => void, options: FanOutOptions = {}): Promise<Subscription> {
    this.assertOpen();
    const subscription = await this.mode.subscribe(topic, onEvent, options);
    return this.track(this.subscriptions, subscription);
  }

  /** Before the first connection, attaches in the background once connected. */
  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    this.assertOpen();
    const consumer = await this.mode.consume(binding, sink);
    return this.track(this.consumers, consumer);
  }

  async redeliver(binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    this.assertOpen();
    const session = this.session();
    if (!session) throw new BrokerUnavailableError(`cannot replay event ${event.id}: NATS is not connected`);
    await this.mode.redeliver(session, binding, event);
  }

  status(): BrokerConnectionStatus {
    return this.closing ? { connected: false, lastError: null } : this.connector.status();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.consumers].map((consumer) => consumer.close()));
      await Promise.all([...this.subscriptions].map((subscription) => subscription.close()));
      await Promise.allSettled([...this.publishing]);
      await this.connector.close();
    })();
    return this.closing;
  }

  private session(): NatsSession | undefined {
    return this.closing ? undefined : this.connector.current();
  }

  /** Keeps `close()` aware of what is open; closing one takes it off the list. */
  private track<T extends { close(): Promise<void> }>(open: Set<T>, resource: T): T {
    const close = resource.close.bind(resource);
    let closed: Promise<void> | undefined;
    const tracked = Object.assign(resource, {
      close: () => (closed ??= close().finally(() => open.delete(tracked))),
    });
    open.add(tracked);
    return tracked;
  }

  private assertOpen(): void {
    if (this.closing) throw new BrokerUnavailableError('the NATS broker is closed');
  }
}
