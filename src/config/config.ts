import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatPath } from '../util/path.js';
import { fileSchema, type ConfigFile } from './file-schema.js';
import { kafkaSecurityEnv, loadBrokerSecurity, natsSecurityEnv, rabbitmqSecurityEnv, securityIssues, type SecurityEnv } from './broker-security.js';
import { commaList, describeEnvIssues, flag, nestEnv, setting } from './env-settings.js';
import { otelEnv, tracingSettings } from './otel-env.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const HOUR = 3600 * 1000;
const hoursToMs = (hours: number) => hours * HOUR;

export const BROKER_KINDS = ['memory', 'rabbitmq', 'kafka', 'nats'] as const;

/** One Kafka bootstrap server as kafkajs parses it: a host (no colon, so no bare IPv6 address) and a port. */
const HOST_PORT = '[^,\\s:]+:\\d+';
/** A Kafka bootstrap server; the adapter checks brokers given in code with it too. */
export const kafkaBrokerAddress = z.string().regex(new RegExp(`^${HOST_PORT}$`), 'must be host:port');
/** Partitions of a topic the gateway creates. */
export const kafkaPartitions = int(1, 10_000);
/** How the gateway compresses the batches it produces. */
export const kafkaCompression = z.enum(['none', 'gzip', 'snappy']);
export type BrokerKind = (typeof BROKER_KINDS)[number];

/**
 * Every environment variable, once: where its value goes in the configuration, how it is checked,
 * its default and what it does (the README's configuration table, `npm run config:docs`). Defaults
 * are stated in the environment's form (hours, "true"); transforms turn them into the
 * configuration's (milliseconds, booleans). Components that need a default take it from
 * `SETTING_DEFAULTS` rather than repeating it. All variables are optional.
 */
export const settingsSchema = z.object({
  port: setting('PORT', int(0, 65535).default(4000), 'HTTP port for `/graphql` (HTTP, WebSocket, SSE), `/health`, `/ready`, `/metrics`'),
  host: setting('HOST', z.string().min(1).default('127.0.0.1'), 'address to listen on; `0.0.0.0` to accept other hosts'),
  /** The SQLite file, used when `databaseUrl` is not set. */
  databasePath: setting(
    'DATABASE_PATH',
    z.string().min(1).default('./data/gateway.db'),
    'SQLite file (created, with its folder, on first start; migrations in `drizzle/` are applied at start)',
  ),
  databaseSynchronous: setting(
    'DATABASE_SYNCHRONOUS',
    z.enum(['FULL', 'NORMAL']).default('FULL'),
    'SQLite `synchronous`; `FULL` makes a committed event survive power loss, `NORMAL` only a crash',
  ),
  /**
   * PostgreSQL (`DATABASE_URL`) instead of the SQLite file: the store several instances share.
   * Holds the password: log it only through `redactUrl`.
   */
  databaseUrl: setting(
    'DATABASE_URL',
    // The message never repeats the value: the URL may carry a password.
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL (postgres://user:password@host:5432/database)')
      .refine((url) => URL.canParse(url), 'is not a valid URL (percent-encode special characters in the user name and password)')
      .optional(),
    '`postgres://user:password@host:5432/database`: use PostgreSQL instead of the SQLite file (migrations in `drizzle/postgres/` are applied at start); logged with the password masked',
  ),
  broker: setting(
    'BROKER',
    z.enum(BROKER_KINDS).default('memory'),
    '`memory`, `rabbitmq`, `kafka` or `nats`: the broker the relay, subscriptions and consumers use',
  ),
  /** Read into `consumers`, `auth` and `brokers.topics`. */
  configFile: setting('GATEWAY_CONFIG', z.string().min(1).optional(), 'path of the JSON file declaring durable consumers, per-topic settings and `auth`'),
  logLevel: setting(
    'LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    '`fatal` `error` `warn` `info` `debug` `trace` `silent`; JSON logs on stdout',
  ),
  eventSource: setting('EVENT_SOURCE', z.string().min(1).default('event-gateway'), 'CloudEvents `source` for events that do not name one'),
  maxEventBytes: setting(
    'MAX_EVENT_BYTES',
    int(1024, 64 * 1024 * 1024).default(256 * 1024),
    'largest event (as structured CloudEvent JSON) a mutation accepts; larger ones answer `PAYLOAD_TOO_LARGE`',
  ),
  processedRetentionMs: setting(
    'PROCESSED_RETENTION_HOURS',
    z.coerce.number().min(0).default(720).transform(hoursToMs),
    'how long a consumer remembers processed event ids (the duplicate-detection window)',
  ),
  subscriberBuffer: setting(
    'SUBSCRIBER_BUFFER',
    int(1, 1_000_000).default(1000),
    "events waiting for one subscriber (past its socket's send buffer) before it is disconnected as too slow",
  ),
  subscriberBufferBytes: setting(
    'SUBSCRIBER_BUFFER_BYTES',
    int(1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
    'bytes waiting for one subscriber, likewise',
  ),
  /** Web origins besides the gateway's own that browsers may call it from (CORS). */
  corsOrigins: setting(
    'CORS_ORIGINS',
    commaList(z.string().refine(isOrigin, 'must be a comma-separated list of origins such as https://app.example.com (scheme, host and port only)')).default(
      [],
    ),
    "web origins, comma-separated, besides the gateway's own, whose pages may call it from a browser (see [Browsers and other sites](#browsers-and-other-sites))",
  ),
  /** Only decides the default of `limits.introspection`. */
  nodeEnv: setting('NODE_ENV', z.string().optional(), '`production` turns introspection and GraphiQL off by default'),
  /** `GET /metrics` (Prometheus) and what feeds it; off: neither. */
  metrics: setting(
    'METRICS',
    flag.default('true').transform((value) => value === 'true'),
    '`false` turns `GET /metrics` off, and the collection behind it (see [Metrics](#metrics))',
  ),
  /** On SIGTERM/SIGINT, how long in-flight work may take before the process exits anyway. */
  stopTimeoutMs: setting(
    'STOP_TIMEOUT_MS',
    int(0, 3_600_000).default(25_000),
    'on SIGTERM/SIGINT, how long in-flight work may take before the process exits anyway',
  ),
  relay: z
    .object({
      batchSize: setting('RELAY_BATCH_SIZE', int(1, 10_000).default(256), 'most events per broker publish'),
      pollIntervalMs: setting('RELAY_POLL_INTERVAL_MS', int(10, 3_600_000).default(2000), 'fallback poll for rows written by other processes'),
      leaseMs: setting(
        'RELAY_LEASE_MS',
        int(1000, 3_600_000).default(30_000),
        "how long a relay's claim on rows lasts; rows claimed by a relay that died are published by another after this",
      ),
      retentionMs: setting(
        'OUTBOX_RETENTION_HOURS',
        z.coerce.number().min(0).default(168).transform(hoursToMs),
        'published outbox rows are deleted after this; `0` keeps them. The publish-side duplicate check (`id`) lasts as long',
      ),
    })
    .describe('Relay (outbox → broker)'),
  /** What one request or connection may ask of the server (see the README's Limits). */
  limits: z
    .object({
      /** Introspection (and GraphiQL, which needs it); off by default when NODE_ENV=production. */
      introspection: setting(
        'INTROSPECTION',
        flag.optional().transform((value) => (value === undefined ? undefined : value === 'true')),
        '`true` / `false`: introspection and GraphiQL',
        { shownDefault: 'on (off in production)' },
      ),
      maxRequestBytes: setting(
        'MAX_REQUEST_BYTES',
        int(1024, 256 * 1024 * 1024).default(1024 * 1024),
        'largest request body (HTTP 413 `REQUEST_ENTITY_TOO_LARGE`)',
      ),
      /** Operations per batched HTTP request; 0 turns batching off. */
      batchLimit: setting('BATCH_LIMIT', int(0, 1000).default(10), 'operations per batched HTTP request; `0` turns batching off'),
      maxDepth: setting('GRAPHQL_MAX_DEPTH', int(1, 1000).default(8), 'deepest query (`QUERY_TOO_DEEP`)'),
      maxCost: setting('GRAPHQL_MAX_COST', int(1, 10_000_000).default(5000), 'costliest query (`QUERY_TOO_COSTLY`)'),
      maxAliases: setting('GRAPHQL_MAX_ALIASES', int(0, 10_000).default(15), 'aliases per operation (`TOO_MANY_ALIASES`)'),
      maxDirectives: setting('GRAPHQL_MAX_DIRECTIVES', int(0, 10_000).default(50), 'directives per operation (`TOO_MANY_DIRECTIVES`)'),
      maxTokens: setting('GRAPHQL_MAX_TOKENS', int(1, 1_000_000).default(1000), 'tokens per operation (`TOO_MANY_TOKENS`)'),
      wsMaxPayloadBytes: setting('WS_MAX_PAYLOAD_BYTES', int(1024, 256 * 1024 * 1024).default(64 * 1024), 'largest WebSocket message (close 1009)'),
      wsInitTimeoutMs: setting('WS_INIT_TIMEOUT_MS', int(1, 600_000).default(3000), 'how long a WebSocket may take to send `connection_init` (close 4408)'),
      wsMaxSubscriptions: setting(
        'WS_MAX_SUBSCRIPTIONS',
        int(1, 10_000).default(20),
        'operations per WebSocket; one more answers `TOO_MANY_SUBSCRIPTIONS` for that operation only',
      ),
    })
    .describe('Limits (see [Limits](#limits))'),
  /**
   * What the broker adapters read; each adapter takes its own part plus `topics`. URLs may carry
   * a password: log them only through `redactUrl`. TLS and credentials (`security`, by variable)
   * become `Secret`s and file contents when the configuration is loaded.
   */
  brokers: z.object({
    /** Events the memory broker keeps per subscribed topic for subscribers that resume. */
    memory: z
      .object({
        retainEvents: setting(
          'MEMORY_RETAIN_EVENTS',
          int(1, 10_000_000).default(10_000),
          'with `BROKER=memory`: events kept per subscribed topic for subscribers that resume (`after`)',
        ),
      })
      .describe('Memory broker (`BROKER=memory`)'),
    rabbitmq: z
      .object({
        url: setting(
          'RABBITMQ_URL',
          z
            .string()
            .regex(/^amqps?:\/\//, 'must be an amqp:// or amqps:// URL')
            .default('amqp://guest:guest@127.0.0.1:5672'),
          "RabbitMQ (`amqps://user:password@host:5671/vhost` for TLS, trusting the system's CAs unless `RABBITMQ_CA_FILE` is set); the password is masked in logs",
        ),
        exchange: setting('RABBITMQ_EXCHANGE', z.string().min(1).max(200).default('events'), 'the topic exchange events are published to'),
        streamMaxAge: setting(
          'RABBITMQ_STREAM_MAX_AGE',
          z
            .string()
            .regex(/^\d+[YMDhms]$/, 'must be a number and a unit: Y, M, D, h, m or s (e.g. "7D", "12h")')
            .default('7D'),
          "how long a subscribed topic's stream queue keeps events for subscribers that resume (`x-max-age`: a number and Y, M, D, h, m or s)",
        ),
        security: z.object(rabbitmqSecurityEnv),
      })
      .describe('RabbitMQ (`BROKER=rabbitmq`); TLS and credentials: see [Broker TLS and credentials](#broker-tls-and-credentials)'),
    kafka: z
      .object({
        brokers: setting(
          'KAFKA_BROKERS',
          z
            .string()
            .regex(new RegExp(`^${HOST_PORT}(,${HOST_PORT})*$`), 'must be host:port[,host:port…]')
            .default('127.0.0.1:9092')
            .transform((list) => list.split(',')),
          'bootstrap servers, `host:port[,host:port…]`',
        ),
        clientId: setting('KAFKA_CLIENT_ID', z.string().min(1).default('event-gateway'), 'kafkajs client id (also names subscription groups)'),
        partitions: setting('KAFKA_PARTITIONS', kafkaPartitions.default(3), 'partitions of topics the gateway creates'),
        compression: setting('KAFKA_COMPRESSION', kafkaCompression.default('none'), '`none`, `gzip` or `snappy` for produced batches'),
        security: z.object(kafkaSecurityEnv),
      })
      .describe('Kafka (`BROKER=kafka`); TLS and credentials: see [Broker TLS and credentials](#broker-tls-and-credentials)'),
    nats: z
      .object({
        url: setting(
          'NATS_URL',
          z
            .string()
            .regex(/^(nats|tls|wss?):\/\//, 'must be a nats:// URL')
            .default('nats://127.0.0.1:4222'),
          'the server (`tls://` requires TLS); `nats://user:password@host` or `nats://token@host` for credentials (one way to log in at a time: these count as one)',
        ),
        stream: setting(
          'NATS_STREAM',
          z
            .string()
            .regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-"')
            .default('EVENTS'),
          'the JetStream stream',
        ),
        jetstream: setting('NATS_JETSTREAM', z.enum(['required', 'off']).default('required'), '`off` runs on core NATS with at-most-once delivery'),
        maxAgeMs: setting('NATS_MAX_AGE_MS', int(0, Number.MAX_SAFE_INTEGER).default(0), 'how long the stream keeps events; `0` keeps them forever'),
        security: z.object(natsSecurityEnv),
      })
      .describe('NATS (`BROKER=nats`); TLS and credentials: see [Broker TLS and credentials](#broker-tls-and-credentials)'),
  }),
  /** Whether spans are exported; trace context is propagated regardless. */
  tracing: z.object(otelEnv).describe('Tracing: the standard OpenTelemetry variables that turn span export on'),
});

type Settings = z.output<typeof settingsSchema>;

/** The settings with nothing set: the defaults components fall back on, stated once above. */
export const SETTING_DEFAULTS: Settings = settingsSchema.parse(nestEnv(settingsSchema, {}));

/**
 * The environment → the configuration: combinations that cannot work are refused, then the
 * `GATEWAY_CONFIG` file and the files the TLS and credential variables name are read (each may
 * throw `ConfigError` naming its variable).
 */
export const configSchema = settingsSchema
  .superRefine((settings, ctx) => {
    for (const [variable, message] of securityIssues(securityEnv(settings.brokers))) ctx.addIssue({ code: 'custom', path: [variable], message });
  })
  .transform(({ configFile, nodeEnv, limits, tracing, brokers, ...settings }) => {
    const file: ConfigFile = configFile ? readConfigFile(configFile) : { consumers: [], topics: {}, auth: undefined };
    const security = loadBrokerSecurity(securityEnv(brokers));
    const { security: _rabbitmq, ...rabbitmq } = brokers.rabbitmq;
    const { security: _kafka, ...kafka } = brokers.kafka;
    const { security: _nats, ...nats } = brokers.nats;
    return {
      ...settings,
      limits: { ...limits, introspection: limits.introspection ?? nodeEnv !== 'production' },
      tracing: tracingSettings(tracing),
      consumers: file.consumers,
      /** Absent: the gateway runs open (and says so at start). */
      auth: file.auth,
      brokers: {
        memory: brokers.memory,
        rabbitmq: { ...rabbitmq, ...security.rabbitmq },
        kafka: { ...kafka, ...security.kafka },
        nats: { ...nats, ...security.nats },
        /** Per-topic settings from the config file. */
        topics: file.topics,
      },
    };
  });

export type GatewayConfig = z.output<typeof configSchema>;
/** What one request or connection may ask of the server. */
export type Limits = GatewayConfig['limits'];
/** Everything the broker adapters read; each adapter takes its own part plus `topics`. */
export type BrokerSettings = GatewayConfig['brokers'];
export type { AuthConfig, ConsumerConfig, TopicSettings } from './file-schema.js';

function securityEnv(brokers: Settings['brokers']): SecurityEnv {
  return {
    ...brokers.kafka.security,
    ...brokers.rabbitmq.security,
    ...brokers.nats.security,
    RABBITMQ_URL: brokers.rabbitmq.url,
    NATS_URL: brokers.nats.url,
  };
}

function isOrigin(value: string): boolean {
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value.replace(/\/$/, '');
}

/** Reads the environment and the `GATEWAY_CONFIG` file. Throws `ConfigError` naming the bad key. */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const parsed = configSchema.safeParse(nestEnv(settingsSchema, env));
  if (!parsed.success) throw new ConfigError(`invalid environment: ${describeEnvIssues(settingsSchema, parsed.error)}`);
  return parsed.data;
}

/** Parses and validates the JSON config file. */
export function readConfigFile(path: string): ConfigFile {
  const where = `GATEWAY_CONFIG ${resolve(path)}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`${where}: cannot read the file (${(cause as NodeJS.ErrnoException).code ?? cause})`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${where}: not valid JSON (${(cause as Error).message})`, { cause });
  }
  return parseConfigFile(json, where);
}

export function parseConfigFile(json: unknown, where = 'config'): ConfigFile {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`${where}: ${describe(parsed.error)}`);
  const seen = new Set<string>();
  parsed.data.consumers.forEach((consumer, i) => {
    if (seen.has(consumer.name)) throw new ConfigError(`${where}: consumers[${i}].name: "${consumer.name}" is used twice`);
    seen.add(consumer.name);
  });
  return parsed.data;
}

/** "consumers[0].webhook.url: must be an http(s) URL; …" */
function describe(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = formatPath(issue.path);
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => (path ? `${path}.${k}` : k)).join(', ') : '';
      if (keys) return `unknown key ${keys}`;
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
