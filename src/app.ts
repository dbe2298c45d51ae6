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
import { ConfigError } from './errors.js';
import { EventPublisher } from './events/publisher.js';
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
  // Checked before anything is opened, so a consumer without a handler leaves nothing behind.
  const definitions = consumerDefinitions(config, options.handlers ?? {});
  const store = openStore({ path: config.databasePath, synchronous: config.databaseSynchronous });
  const wake = new Signal();
  store.onOutboxChange(() => wake.notify());
  const { outbox, deadLetters, processed } = store;
  const broker = options.broker ?? createBroker(config, logger);
  const deadLetterBus = new EventBus<DeadLetterRow>();

  const relay = new Relay(
    { outbox, broker, wake, logger: logger.child({ component: 'relay' }) },
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
    },
    definitions,
  );
  const hub = new SubscriptionHub(broker, logger.child({ component: 'subscriptions' }), {
    bufferSize: config.subscriberBuffer,
    bufferBytes: config.subscriberBufferBytes,
  });
  const groups = new SubscriptionGroups(hub, logger.child({ component: 'subscriptions' }));
  const publisher = new EventPublisher(outbox, { defaultSource: config.eventSource, maxEventBytes: config.maxEventBytes });
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
  });
  const server: Server = createServer(
    createOperationsEndpoints(
      {
        dialect: store.dialect,
        storeWritable: () => store.ping(),
        broker: () => ({ kind: broker.kind, ...broker.status(), circuit: relay.breaker.state }),
      },
      yoga,
    ),
  );
  const ws = attachWebSocket(server, {
    yoga,
    authenticator,
    limits: config.limits,
    logger: logger.child({ component: 'websocket' }),
    bounds: { frames: config.subscriberBuffer, bytes: config.subscriberBufferBytes },
    origins,
  });
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
      await authenticator.ready();
      if (!authenticator.enabled) {
        logger.warn(
          'authorization is off: anyone who can reach this gateway may publish, subscribe and administer. ' +
            'Configure "auth" (API keys and/or JWT) in the GATEWAY_CONFIG file to turn it on.',
        );
      }
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
      logger.info({ url: this.url, broker: broker.kind, consumers: consumers.names() }, 'event-gateway listening');
    },

    async stop() {
      const closing = started
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
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
      await store.close();
      logger.info('event-gateway stopped');
    },
  };
}

/** Waits for the broker up to `timeoutMs`; a broker that is only down does not stop the start. */
async function connectBroker(broker: Broker, timeoutMs: number, logger: Logger): Promise<void> {
  const connecting = broker.connect();
  if (!(await within(connecting, timeoutMs))) {
    connecting.catch((error: unknown) => logger.error({ err: error, broker: broker.kind }, 'broker connection failed'));
    logger.warn({ broker: broker.kind, lastError: broker.status().lastError }, 'broker not reachable yet; starting anyway and retrying');
  }
}

function consumerDefinitions(config: GatewayConfig, handlers: Record<string, EventHandler>): ConsumerDefinition[] {
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
      handler: fn ?? createWebhookHandler({ url: webhook!.url, timeoutMs: webhook!.timeoutMs, headers: webhook!.headers, secrets: webhook!.secret }),
      description: fn ? 'function' : `webhook ${redactUrl(webhook!.url, 'webhook URL')}`,
    };
  });
}
