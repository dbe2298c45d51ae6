import type { Plugin } from 'graphql-yoga';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { Broker } from '../brokers/broker.js';
import type { ConsumerManager } from '../consumers/consumer-manager.js';
import type { CircuitState } from '../relay/circuit-breaker.js';
import type { Relay } from '../relay/relay.js';
import { DEAD_LETTER_STATUSES, type DeadLetterRepository } from '../store/dead-letter-repository.js';
import { OUTBOX_STATUSES, type OutboxRepository } from '../store/outbox-repository.js';
import type { SubscriptionGroups } from '../subscriptions/subscription-groups.js';
import type { SubscriptionHub } from '../subscriptions/subscription-hub.js';
import type { Logger } from '../util/logger.js';
import { ScrapeCache } from './scrape-cache.js';
import { createSubscriptionTracking, useOperationMetrics, type SubscriptionTracking, type Transport } from './use-operation-metrics.js';

/** What `/metrics` reads when it is scraped. */
export interface MetricSources {
  readonly store: { readonly outbox: OutboxRepository; readonly deadLetters: DeadLetterRepository };
  readonly broker: Broker;
  readonly relay: Relay;
  readonly consumers: ConsumerManager;
  readonly hub: SubscriptionHub;
  readonly groups: SubscriptionGroups;
  /** Open WebSocket connections. */
  readonly websockets: () => number;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** For `RelayDeps.onConfirmed`: one histogram observation per confirmed event. */
  readonly onRelayConfirmed: (createdAt: Date, confirmedAt: number) => void;
  /** For `WebSocketOptions.onTooSlow`. */
  readonly onWebSocketTooSlow: () => void;
  /** `useOperationMetrics`, for the Yoga server. */
  readonly plugin: Plugin;
  /** The same subscription counts, for `WebSocketOptions.subscriptions` (grouped subscriptions outside Yoga's hooks). */
  readonly subscriptions: SubscriptionTracking;
  /** Registers what is read from the gateway's parts at scrape time; once, after they exist. */
  watch(sources: MetricSources): void;
  /** The Prometheus text exposition, for `GET /metrics`. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

const CIRCUIT_STATES: readonly CircuitState[] = ['CLOSED', 'OPEN', 'HALF_OPEN'];
const TRANSPORTS: readonly Transport[] = ['websocket', 'sse', 'http'];
/** How long a scrape waits for the broker to tell a consumer's lag. */
const LAG_TIMEOUT_MS = 1500;

let processRegistry: Registry | undefined;

/**
 * CPU, memory, event loop, GC and handles belong to the process, not to one app in it (tests run
 * several): collected once, into every app's registry. `collectDefaultMetrics` starts observers
 * that are never stopped, so calling it per app would add up.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The gateway's Prometheus metrics, in a registry of its own (never prom-client's global one).
 * What the hot paths feed is cheap: plain number fields the parts already keep (relay, consumer
 * and group totals) are read when scraped, and the two histograms observe through children
 * resolved once. Everything that needs the store or the broker is read at scrape time, through a
 * `ScrapeCache`: a store that fails or hangs leaves its series out (and `gateway_store_up` 0)
 * instead of failing or holding up the scrape.
 */
export function createGatewayMetrics(logger: Logger): GatewayMetrics {
  const registry = new Registry();
  // (`getMetricsAsArray` is typed as plain objects; they are the metrics themselves.)
  for (const metric of processMetrics().getMetricsAsArray()) registry.registerMetric(metric as unknown as Metric);
  const registers = [registry];

  const confirmLatency = new Histogram({
    name: 'gateway_relay_commit_to_confirm_seconds',
    help: 'Time from an outbox row being written (its commit) to the broker confirming the event, per event.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  const durations = new Histogram({
    name: 'gateway_graphql_operation_duration_seconds',
    help: 'GraphQL operations by type: queries and mutations from the start of execution to the result, subscriptions until the stream is set up.',
    labelNames: ['operation_type'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const tooSlow = new Counter({
    name: 'gateway_subscribers_too_slow_total',
    help: 'Subscribers cut off because events piled up past SUBSCRIBER_BUFFER / SUBSCRIBER_BUFFER_BYTES (WebSocket: closed with 1008; SSE and others: ended with SUBSCRIBER_TOO_SLOW).',
    labelNames: ['transport'] as const,
    registers,
  });
  const tooSlowBy = Object.fromEntries(TRANSPORTS.map((t) => [t, tooSlow.labels(t)])) as Record<Transport, { inc(value?: number): void }>;
  for (const t of TRANSPORTS) tooSlowBy[t].inc(0);
  const live: Record<Transport, number> = { websocket: 0, sse: 0, http: 0 };
  const subscriptions = createSubscriptionTracking({ durations, live, onTooSlow: (transport) => tooSlowBy[transport].inc() });

  return {
    registry,
    onRelayConfirmed: (createdAt, confirmedAt) => confirmLatency.observe(Math.max(0, confirmedAt - createdAt.getTime()) / 1000),
    onWebSocketTooSlow: () => tooSlowBy.websocket.inc(),
    plugin: useOperationMetrics({ durations, subscriptions }),
    subscriptions,
    watch: (sources) => watch(registry, sources, live, logger),
    scrape: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}

type Labels = Record<string, string>;
type Reader = (set: (labels: Labels, value: number) => void) => void | Promise<void>;

function watch(registry: Registry, sources: MetricSources, live: Readonly<Record<Transport, number>>, logger: Logger): void {
  const { store, broker, relay, consumers, hub, groups } = sources;
  /** A metric whose series are read when scraped; the old ones are dropped only once the new ones are known. */
  const define = (kind: 'gauge' | 'counter', name: string, help: string, labelNames: readonly string[], read: Reader) => {
    const collect = async function (this: Gauge | Counter) {
      const series: [Labels, number][] = [];
      await read((labels, value) => series.push([labels, value]));
      this.reset();
      for (const [labels, value] of series) {
        if (this instanceof Gauge) this.set(labels, value);
        else this.inc(labels, value);
      }
    };
    const config = { name, help, labelNames, registers: [registry], collect };
    if (kind === 'gauge') new Gauge(config);
    else new Counter(config);
  };

  const storeReading = new ScrapeCache(
    async () => {
      const [outbox, ...dead] = await Promise.all([store.outbox.summary(), ...DEAD_LETTER_STATUSES.map((status) => store.deadLetters.countByConsumer(status))]);
      return { outbox, dead: DEAD_LETTER_STATUSES.map((status, i) => [status, dead[i]!] as const) };
    },
    { onError: (error) => logger.warn({ err: error }, 'metrics: could not read outbox and dead-letter counts from the store') },
  );
  const lags = new ScrapeCache(() => consumers.lags(LAG_TIMEOUT_MS), {
    onError: (error) => logger.warn({ err: error }, 'metrics: could not read consumer lag'),
  });

  define(
    'gauge',
    'gateway_store_up',
    '1 when the store answered the outbox and dead-letter counts of this scrape, 0 when it failed or did not answer within 2 s (those series are then left out).',
    [],
    async (set) => set({}, (await storeReading.get()) ? 1 : 0),
  );
  define(
    'gauge',
    'gateway_outbox_rows',
    'Outbox rows by status: PENDING (waiting for the relay), PUBLISHED (kept for OUTBOX_RETENTION_HOURS), FAILED (refused by the broker for good).',
    ['status'],
    async (set) => {
      const reading = await storeReading.get();
      if (reading) for (const status of OUTBOX_STATUSES) set({ status }, reading.outbox.counts[status]);
    },
  );
  define(
    'gauge',
    'gateway_outbox_oldest_pending_age_seconds',
    'Age of the oldest PENDING outbox row (first in commit order); 0 when none is pending.',
    [],
    async (set) => {
      const reading = await storeReading.get();
      const oldest = reading?.outbox.oldestPendingAt;
      if (reading) set({}, oldest ? Math.max(0, Date.now() - oldest.getTime()) / 1000 : 0);
    },
  );
  define(
    'gauge',
    'gateway_dead_letters',
    'Dead letters in the store by consumer and status (DEAD, REPLAYED, DISCARDED).',
    ['consumer', 'status'],
    async (set) => {
      const reading = await storeReading.get();
      for (const [status, byConsumer] of reading?.dead ?? []) for (const [consumer, n] of byConsumer) set({ consumer, status }, n);
    },
  );

  define('counter', 'gateway_relay_published_total', 'Events this process relayed from the outbox and the broker confirmed.', [], (set) =>
    set({}, relay.stats.published),
  );
  define(
    'counter',
    'gateway_relay_publish_failures_total',
    'Publish attempts of single events that failed (the row stays PENDING for a retry, or becomes FAILED).',
    [],
    (set) => set({}, relay.stats.failed),
  );
  define(
    'gauge',
    'gateway_relay_circuit_state',
    "The relay's circuit breaker per broker: 1 for its current state (CLOSED, OPEN, HALF_OPEN), 0 for the others.",
    ['broker', 'state'],
    (set) => {
      for (const state of CIRCUIT_STATES) set({ broker: broker.kind, state }, relay.breaker.state === state ? 1 : 0);
    },
  );
  define('gauge', 'gateway_broker_connected', '1 while the broker connection is up.', ['broker'], (set) =>
    set({ broker: broker.kind }, broker.status().connected ? 1 : 0),
  );

  const perConsumer =
    (field: 'processed' | 'retried' | 'deadLettered'): Reader =>
    (set) => {
      for (const { consumer, totals } of consumers.totals()) set({ consumer }, totals[field]);
    };
  define(
    'counter',
    'gateway_consumer_processed_total',
    'Deliveries a durable consumer in this process acknowledged: handled, or skipped as already handled or of a type it does not take.',
    ['consumer'],
    perConsumer('processed'),
  );
  define(
    'counter',
    'gateway_consumer_retried_total',
    'Deliveries whose attempt failed and that will be tried again, per consumer, in this process.',
    ['consumer'],
    perConsumer('retried'),
  );
  define(
    'counter',
    'gateway_consumer_dead_lettered_total',
    'Deliveries given up on and recorded as dead letters, per consumer, in this process.',
    ['consumer'],
    perConsumer('deadLettered'),
  );
  define('gauge', 'gateway_consumer_retrying', 'Events waiting for another attempt in this process, per consumer.', ['consumer'], (set) => {
    for (const { consumer, retrying } of consumers.totals()) set({ consumer }, retrying);
  });
  define(
    'gauge',
    'gateway_consumer_lag_messages',
    'Messages waiting for a consumer at the broker, as the broker tells it (left out where it cannot, or not within 1.5 s).',
    ['consumer'],
    async (set) => {
      for (const [consumer, lag] of (await lags.get()) ?? []) if (lag !== null) set({ consumer }, lag);
    },
  );

  define(
    'gauge',
    'gateway_connections',
    'Open subscriber connections: WebSocket connections, and SSE responses (one per subscription).',
    ['transport'],
    (set) => {
      set({ transport: 'websocket' }, sources.websockets());
      set({ transport: 'sse' }, live.sse);
    },
  );
  define('gauge', 'gateway_subscriptions', 'Live GraphQL subscriptions by transport.', ['transport'], (set) => {
    for (const transport of TRANSPORTS) set({ transport }, live[transport]);
  });
  define(
    'gauge',
    'gateway_subscription_groups',
    '`events` subscriptions grouped by identical operation: each group executes an event once for all its members.',
    [],
    (set) =>
      set(
        {},
        groups.stats().reduce((n, topic) => n + topic.groups, 0),
      ),
  );
  define('gauge', 'gateway_subscription_topics', 'Topics with a live broker subscription in this process (one each, shared by its subscribers).', [], (set) =>
    set({}, hub.stats().length),
  );
  define('counter', 'gateway_subscription_executions_total', 'Executions of a subscription selection for an event (one per group and event).', [], (set) =>
    set({}, groups.totals.executions),
  );
  define('counter', 'gateway_subscription_deliveries_total', 'Events handed to subscribers (one per member and event).', [], (set) =>
    set({}, groups.totals.deliveries),
  );
}
