import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuthenticator } from './auth/authenticator.js';
import type { Broker } from './brokers/broker.js';
import { createBroker } from './brokers/index.js';
import { redactUrl } from './brokers/redact-url.js';
import type { GatewayConfig } from './config/config.js';
import { ConsumerManager } from './consumers/consumer-manager.js';
import type { EventHandler } from './consumers/handlers/handler.js';
import { createWebhookHandler } from './consumers/handlers/webhook.js';
import type { ConsumerDefinition } from './consumers/pipeline.js';
import { ConfigError, errorMessage, StoreUnavailableError } from './errors.js';
import { EventPublisher } from './events/publisher.js';
import { createGatewayMetrics } from './metrics/gateway-metrics.js';
import { Relay, type RelayOptions } from './relay/relay.js';
import type { Services } from './schema/context.js';
import { attachWebSocket } from './server/websocket.js';
import { createOperationsEndpoints } from './server/operations-endpoints.js';
import { OriginPolicy } from './server/use-cross-site-protection.js';
import { createGatewayYoga, type GatewayYoga } from './server/yoga.js';
import type { DeadLetterRow } from './store/dead-letter-repository.js';
import { openStore, type Store } from './store/store.js';
import { SubscriptionGroups } from './subscriptions/subscription-groups.js';
import { SubscriptionHub } from './subscriptions/subscription-hub.js';
import { EventBus } from './util/event-bus.js';
import { createLogger, type Logger } from './util/logger.js';
import { Signal } from './util/signal.js';
import { Tracing, type TracingOptions } from './tracing/tracing.js';
import { within } from './util/retrying.js';

export interface BuildAppOptions {
  /** Use this broker instead of the one `config.broker` names (tests, embedding). */
  broker?: Broker;
  logger?: Logger;
  /** Function handlers for consumers, by consumer name (instead of, or overriding, a webhook). */
  handlers?: Record<string, EventHandler>;
  /** Relay tuning beyond the configuration (tests use short backoffs). */
  relay?: Omit<RelayOptions, 'batchSize' | 'pollIntervalMs' | 'leaseMs' | 'retentionMs'>;
  /**
   * How long the broker may take to connect at start before the gateway starts without it
   * (the relay keeps retrying and `/ready` reports not ready meanwhile).
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Where spans go instead of what the `OTEL_*` variables say: span processors of the app's own
   * provider (tests: an `InMemorySpanExporter`), or the embedding application's provider.
   */
  tracing?: TracingOptions;
}

export interface App {
  readonly services: Services;
  readonly store: Store;
  readonly yoga: GatewayYoga;
  readonly logger: Logger;
  /** `http://host:port/graphql` once started. */
  readonly url: string;
  readonly port: number;
  /** Connects the broker, starts consumers and the relay, then listens. */
  start(): Promise<void>;
  /**
   * Stops accepting connections, ends subscriptions, lets in-flight relay batches and handler
   * calls finish, then closes the broker and the store.
   */
  stop(): Promise<void>;
}

export function buildApp(config: GatewayConfig, options: BuildAppOptions = {}): App {
  const logger = options.logger ?? createLogger(config.logLevel);
  // Trace context is always propagated; spans only once `start()` loaded a provider, if asked for.
  const tracing = new Tracing(config.tracing, options.broker?.kind ?? config.broker, options.tracing, logger.child({ component: 'tracing' }));
  // Checked before anything is opened, so a consumer without a handler leaves nothing behind.
  const definitions = consumerDefinitions(config, options.handlers ?? {}, tracing);
  const store = openStore(config.databaseUrl ? { url: config.databaseUrl } : { path: config.databasePath, synchronous: config.databaseSynchronous });
  const wake = new Signal();
  store.onOutboxChange(() => wake.notify());
  const { outbox, deadLetters, processed } = store;
  const broker = options.broker ?? createBroker(config, logger);
  const deadLetterBus = new EventBus<DeadLetterRow>();

  const metrics = config.metrics ? createGatewayMetrics(logger.child({ component: 'metrics' })) : undefined;

  const relay = new Relay(
    { outbox, broker, wake, logger: logger.child({ component: 'relay' }), onConfirmed: metrics?.onRelayConfirmed, tracing },
    { ...options.relay, ...config.relay },
  );
  const consumers = new ConsumerManager(
    {
      broker,
      processed,
      deadLetters,
      logger: logger.child({ component: 'consumers' }),
      onDeadLetter: (row) => deadLetterBus.publish(row),
      processedRetentionMs: config.processedRetentionMs,
      tracing,
    },
    definitions,
  );
  const hub = new SubscriptionHub(broker, logger.child({ component: 'subscriptions' }), {
    bufferSize: config.subscriberBuffer,
    bufferBytes: config.subscriberBufferBytes,
  });
  const groups = new SubscriptionGroups(hub, logger.child({ component: 'subscriptions' }));
  const publisher = new EventPublisher(outbox, { defaultSource: config.eventSource, maxEventBytes: config.maxEventBytes }, tracing);
  const services: Services = { publisher, outbox, deadLetters, processed, consumers, hub, groups, broker, relay, deadLetterBus };

  const authenticator = createAuthenticator(config.auth);
  const origins = new OriginPolicy(config.corsOrigins);
  const yoga = createGatewayYoga({
    services,
    logger: logger.child({ component: 'http' }),
    authenticator,
    limits: config.limits,
    groups,
    subscriberBounds: { events: config.subscriberBuffer, bytes: config.subscriberBufferBytes },
    origins,
    plugins: metrics ? [metrics.plugin] : [],
  });
  const server: Server = createServer(
    createOperationsEndpoints(
      {
        dialect: store.dialect,
        storeWritable: () => store.ping(),
        broker: () => ({ kind: broker.kind, ...broker.status(), circuit: relay.breaker.state }),
        metrics: metrics?.scrape,
      },
      yoga,
    ),
  );
  const ws = attachWebSocket(server, {
    yoga,
    groups,
    subscriptions: metrics?.subscriptions,
    authenticator,
    limits: config.limits,
    logger: logger.child({ component: 'websocket' }),
    bounds: { frames: config.subscriberBuffer, bytes: config.subscriberBufferBytes },
    origins,
    onTooSlow: metrics?.onWebSocketTooSlow,
  });
  metrics?.watch({ store, broker, relay, consumers, hub, groups, websockets: () => ws.wss.clients.size });
  let port = 0;
  let started = false;

  return {
    services,
    store,
    yoga,
    logger,
    get port() {
      return port;
    },
    get url() {
      return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}/graphql`;
    },

    async start() {
      await checkStore(store, config);
      await authenticator.ready();
      if (!authenticator.enabled) {
        logger.warn(
          'authorization is off: anyone who can reach this gateway may publish, subscribe and administer. ' +
            'Configure "auth" (API keys and/or JWT) in the GATEWAY_CONFIG file to turn it on.',
        );
      }
      // Before anything that makes spans: consumers and the relay see whether spans are exported.
      await tracing.start();
      await connectBroker(broker, options.connectTimeoutMs ?? 10_000, logger);
      await consumers.start();
      relay.start();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      port = (server.address() as AddressInfo).port;
      started = true;
      logger.info({ url: this.url, store: store.dialect, broker: broker.kind, consumers: consumers.names() }, 'event-gateway listening');
    },

    async stop() {
      const closing = started ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      started = false;
      server.closeIdleConnections();
      deadLetterBus.close();
      groups.close();
      await hub.close();
      await ws.close();
      await relay.stop();
      await consumers.stop();
      await broker.close();
      server.closeAllConnections();
      await closing;
      // The last spans (in-flight batches and handler calls have ended) are flushed.
      await tracing.shutdown();
      await store.close();
      logger.info('event-gateway stopped');
    },
  };
}

/**
 * The store must answer before anything is served; on PostgreSQL this first call also applies the
 * migrations. Unlike a broker that is down, a store that is unreachable at start stops the start:
 * nothing could be published. The error names the database without its password, and the store
 * is closed (PostgreSQL would keep trying to LISTEN).
 */
async function checkStore(store: Store, config: GatewayConfig): Promise<void> {
  try {
    await store.ping();
  } catch (error) {
    await store.close().catch(() => {});
    const where = config.databaseUrl ? redactUrl(config.databaseUrl, 'database URL') : config.databasePath;
    throw new StoreUnavailableError(`the ${store.dialect} store at ${where} cannot be used: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Waits for the broker up to `timeoutMs`. A broker that is only down does not stop the start: it
 * keeps being retried. One that refuses this gateway for good stops it, since no retry changes its
 * answer: adapters reject `connect()` at the first such attempt, with `BrokerAuthenticationError`
 * for refused credentials or certificates (naming the variable to fix) and `ConfigError` or
 * `BrokerCapabilityError` for the rest.
 */
async function connectBroker(broker: Broker, timeoutMs: number, logger: Logger): Promise<void> {
  const connecting = broker.connect();
  if (!(await within(connecting, timeoutMs))) {
    connecting.catch((error: unknown) => logger.error({ err: error, broker: broker.kind }, 'broker connection failed'));
    logger.warn({ broker: broker.kind, lastError: broker.status().lastError }, 'broker not reachable yet; starting anyway and retrying');
  }
}

function consumerDefinitions(config: GatewayConfig, handlers: Record<string, EventHandler>, tracing: Tracing): ConsumerDefinition[] {
  const known = new Set(config.consumers.map((c) => c.name));
  for (const name of Object.keys(handlers)) {
    if (!known.has(name)) throw new ConfigError(`a handler is given for consumer "${name}", which the configuration does not declare`);
  }
  return config.consumers.map((consumer) => {
    const fn = handlers[consumer.name];
    const webhook = consumer.webhook;
    if (!fn && !webhook) {
      throw new ConfigError(`consumer "${consumer.name}" has no handler: give it a "webhook" in GATEWAY_CONFIG, or a function in buildApp's handlers`);
    }
    return {
      name: consumer.name,
      topic: consumer.topic,
      types: consumer.types,
      maxAttempts: consumer.maxAttempts,
      backoff: consumer.backoff,
      prefetch: consumer.prefetch,
      handler: fn ?? createWebhookHandler({ url: webhook!.url, timeoutMs: webhook!.timeoutMs, headers: webhook!.headers, secrets: webhook!.secret }, tracing),
      description: fn ? 'function' : `webhook ${redactUrl(webhook!.url, 'webhook URL')}`,
    };
  });
}
