import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatPath } from '../util/path.js';
import { fileSchema, type AuthConfig, type ConfigFile, type ConsumerConfig, type TopicSettings } from './file-schema.js';
import {
  kafkaSecurityEnv,
  loadBrokerSecurity,
  natsSecurityEnv,
  rabbitmqSecurityEnv,
  securityIssues,
  type KafkaSasl,
  type NatsAuth,
  type TlsSettings,
} from './broker-security.js';
import type { Secret } from './secret.js';
import { otelEnv, tracingSettings, type TracingSettings } from './otel-env.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const BROKER_KINDS = ['memory', 'rabbitmq', 'kafka', 'nats'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];

/** Settings read from the environment (all optional, with defaults). */
const envSchema = z.object({
  PORT: int(0, 65535).default(4000),
  STOP_TIMEOUT_MS: int(0, 3_600_000).default(25_000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_PATH: z.string().min(1).default('./data/gateway.db'),
  DATABASE_SYNCHRONOUS: z.enum(['FULL', 'NORMAL']).default('FULL'),
  // The message never repeats the value: the URL may carry a password.
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL (postgres://user:password@host:5432/database)')
    .refine((url) => URL.canParse(url), 'is not a valid URL (percent-encode special characters in the user name and password)')
    .optional(),
  BROKER: z.enum(BROKER_KINDS).default('memory'),
  GATEWAY_CONFIG: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  EVENT_SOURCE: z.string().min(1).default('event-gateway'),
  MAX_EVENT_BYTES: int(1024, 64 * 1024 * 1024).default(256 * 1024),
  RELAY_BATCH_SIZE: int(1, 10_000).default(256),
  RELAY_POLL_INTERVAL_MS: int(10, 3_600_000).default(2000),
  RELAY_LEASE_MS: int(1000, 3_600_000).default(30_000),
  OUTBOX_RETENTION_HOURS: z.coerce.number().min(0).default(168),
  PROCESSED_RETENTION_HOURS: z.coerce.number().min(0).default(720),
  SUBSCRIBER_BUFFER: int(1, 1_000_000).default(1000),
  NODE_ENV: z.string().optional(),
  INTROSPECTION: z.enum(['true', 'false']).optional(),
  METRICS: z.enum(['true', 'false']).default('true'),
  CORS_ORIGINS: z
    .string()
    .transform((list) => list.split(',').map((origin) => origin.trim()).filter(Boolean))
    .pipe(z.array(z.string().refine(isOrigin, 'must be a comma-separated list of origins such as https://app.example.com (scheme, host and port only)')))
    .default([]),
  MAX_REQUEST_BYTES: int(1024, 256 * 1024 * 1024).default(1024 * 1024),
  BATCH_LIMIT: int(0, 1000).default(10),
  GRAPHQL_MAX_DEPTH: int(1, 1000).default(8),
  GRAPHQL_MAX_COST: int(1, 10_000_000).default(5000),
  GRAPHQL_MAX_ALIASES: int(0, 10_000).default(15),
  GRAPHQL_MAX_DIRECTIVES: int(0, 10_000).default(50),
  GRAPHQL_MAX_TOKENS: int(1, 1_000_000).default(1000),
  WS_MAX_PAYLOAD_BYTES: int(1024, 256 * 1024 * 1024).default(64 * 1024),
  WS_INIT_TIMEOUT_MS: int(1, 600_000).default(3000),
  WS_MAX_SUBSCRIPTIONS: int(1, 10_000).default(20),
  SUBSCRIBER_BUFFER_BYTES: int(1024, 1024 * 1024 * 1024).default(4 * 1024 * 1024),
  MEMORY_RETAIN_EVENTS: int(1, 10_000_000).default(10_000),
  RABBITMQ_URL: z.string().regex(/^amqps?:\/\//, 'must be an amqp:// or amqps:// URL').default('amqp://guest:guest@127.0.0.1:5672'),
  RABBITMQ_EXCHANGE: z.string().min(1).max(200).default('events'),
  RABBITMQ_STREAM_MAX_AGE: z
    .string()
    .regex(/^\d+[YMDhms]$/, 'must be a number and a unit: Y, M, D, h, m or s (e.g. "7D", "12h")')
    .default('7D'),
  KAFKA_BROKERS: z
    .string()
    .regex(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/, 'must be host:port[,host:port…]')
    .default('127.0.0.1:9092'),
  KAFKA_CLIENT_ID: z.string().min(1).default('event-gateway'),
  KAFKA_PARTITIONS: int(1, 10_000).default(3),
  KAFKA_COMPRESSION: z.enum(['none', 'gzip', 'snappy']).default('none'),
  NATS_URL: z.string().regex(/^(nats|tls|wss?):\/\//, 'must be a nats:// URL').default('nats://127.0.0.1:4222'),
  NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "_" or "-"').default('EVENTS'),
  NATS_JETSTREAM: z.enum(['required', 'off']).default('required'),
  NATS_MAX_AGE_MS: int(0, Number.MAX_SAFE_INTEGER).default(0),
  // TLS and credentials, one group per broker (src/config/broker-security.ts).
  ...kafkaSecurityEnv,
  ...rabbitmqSecurityEnv,
  ...natsSecurityEnv,
  // Whether spans are exported (src/config/otel-env.ts); trace context is propagated regardless.
  ...otelEnv,
}).superRefine((e, ctx) => {
  for (const [variable, message] of securityIssues(e)) ctx.addIssue({ code: 'custom', path: [variable], message });
});

function isOrigin(value: string): boolean {
  return URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value.replace(/\/$/, '');
}

export type { AuthConfig, ConsumerConfig, TopicSettings } from './file-schema.js';

export type EnvConfig = z.infer<typeof envSchema>;

export interface GatewayConfig {
  readonly port: number;
  readonly host: string;
  /** The SQLite file, used when `databaseUrl` is not set. */
  readonly databasePath: string;
  readonly databaseSynchronous: 'FULL' | 'NORMAL';
  /**
   * PostgreSQL (`DATABASE_URL`) instead of the SQLite file: the store several instances share.
   * Holds the password: log it only through `redactUrl`.
   */
  readonly databaseUrl: string | undefined;
  readonly broker: BrokerKind;
  readonly logLevel: EnvConfig['LOG_LEVEL'];
  readonly eventSource: string;
  readonly maxEventBytes: number;
  readonly relay: { readonly batchSize: number; readonly pollIntervalMs: number; readonly leaseMs: number; readonly retentionMs: number };
  readonly processedRetentionMs: number;
  /** On SIGTERM/SIGINT, how long in-flight work may take before the process exits anyway. */
  readonly stopTimeoutMs: number;
  readonly subscriberBuffer: number;
  readonly subscriberBufferBytes: number;
  readonly consumers: readonly ConsumerConfig[];
  readonly brokers: BrokerSettings;
  /** Absent: the gateway runs open (and says so at start). */
  readonly auth: AuthConfig | undefined;
  readonly limits: Limits;
  /** Web origins besides the gateway's own that browsers may call it from (CORS). */
  readonly corsOrigins: readonly string[];
  /** `GET /metrics` (Prometheus) and what feeds it; off: neither. */
  readonly metrics: boolean;
  /** Span export from the standard `OTEL_*` variables; off unless they ask for it. */
  readonly tracing: TracingSettings;
}

/** What one request or connection may ask of the server. */
export interface Limits {
  /** Introspection (and GraphiQL, which needs it); off by default when NODE_ENV=production. */
  readonly introspection: boolean;
  readonly maxRequestBytes: number;
  /** Operations per batched HTTP request; 0 turns batching off. */
  readonly batchLimit: number;
  readonly maxDepth: number;
  readonly maxCost: number;
  readonly maxAliases: number;
  readonly maxDirectives: number;
  readonly maxTokens: number;
  readonly wsMaxPayloadBytes: number;
  readonly wsInitTimeoutMs: number;
  readonly wsMaxSubscriptions: number;
}

/**
 * Everything the broker adapters read; each adapter takes its own part plus `topics`. Secrets are
 * `Secret`s (they print as `[secret from <variable>]`); URLs may carry a password: log them only
 * through `redactUrl`.
 */
export interface BrokerSettings {
  readonly rabbitmq: {
    readonly url: string;
    readonly exchange: string;
    readonly streamMaxAge?: string;
    /** With an amqps:// URL: CA and client certificate (absent: the system's CAs, no client certificate). */
    readonly tls?: TlsSettings | undefined;
    /** `RABBITMQ_PASSWORD_FILE`, for the user the URL names (instead of a password in the URL). */
    readonly password?: Secret | undefined;
  };
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly partitions: number;
    readonly compression: 'none' | 'gzip' | 'snappy';
    /** Absent: plaintext. */
    readonly ssl?: TlsSettings | undefined;
    readonly sasl?: KafkaSasl | undefined;
  };
  readonly nats: {
    readonly url: string;
    readonly stream: string;
    readonly jetstream: 'required' | 'off';
    readonly maxAgeMs: number;
    /** TLS required (tls:// URL, `NATS_TLS`, or TLS files); absent: TLS only if the server asks for it. */
    readonly tls?: TlsSettings | undefined;
    /** Absent: credentials in the URL, if any. */
    readonly auth?: NatsAuth | undefined;
  };
  /** Events the memory broker keeps per subscribed topic for subscribers that resume. */
  readonly memory: { readonly retainEvents: number };
  /** Per-topic settings from the config file. */
  readonly topics: Readonly<Record<string, TopicSettings>>;
}

const HOUR = 3600 * 1000;

/** Reads the environment and the `GATEWAY_CONFIG` file. Throws `ConfigError` naming the bad key. */
export function loadConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  const parsedEnv = envSchema.safeParse(blankToUndefined(env));
  if (!parsedEnv.success) throw new ConfigError(`invalid environment: ${describe(parsedEnv.error)}`);
  const e = parsedEnv.data;
  const file = e.GATEWAY_CONFIG ? readConfigFile(e.GATEWAY_CONFIG) : { consumers: [], topics: {}, auth: undefined };
  const security = loadBrokerSecurity(e);
  return {
    port: e.PORT,
    host: e.HOST,
    databasePath: e.DATABASE_PATH,
    databaseSynchronous: e.DATABASE_SYNCHRONOUS,
    databaseUrl: e.DATABASE_URL,
    broker: e.BROKER,
    logLevel: e.LOG_LEVEL,
    eventSource: e.EVENT_SOURCE,
    maxEventBytes: e.MAX_EVENT_BYTES,
    relay: {
      batchSize: e.RELAY_BATCH_SIZE,
      pollIntervalMs: e.RELAY_POLL_INTERVAL_MS,
      leaseMs: e.RELAY_LEASE_MS,
      retentionMs: e.OUTBOX_RETENTION_HOURS * HOUR,
    },
    processedRetentionMs: e.PROCESSED_RETENTION_HOURS * HOUR,
    stopTimeoutMs: e.STOP_TIMEOUT_MS,
    subscriberBuffer: e.SUBSCRIBER_BUFFER,
    subscriberBufferBytes: e.SUBSCRIBER_BUFFER_BYTES,
    consumers: file.consumers,
    brokers: {
      rabbitmq: { url: e.RABBITMQ_URL, exchange: e.RABBITMQ_EXCHANGE, streamMaxAge: e.RABBITMQ_STREAM_MAX_AGE, ...security.rabbitmq },
      kafka: {
        brokers: e.KAFKA_BROKERS.split(','),
        clientId: e.KAFKA_CLIENT_ID,
        partitions: e.KAFKA_PARTITIONS,
        compression: e.KAFKA_COMPRESSION,
        ...security.kafka,
      },
      nats: { url: e.NATS_URL, stream: e.NATS_STREAM, jetstream: e.NATS_JETSTREAM, maxAgeMs: e.NATS_MAX_AGE_MS, ...security.nats },
      memory: { retainEvents: e.MEMORY_RETAIN_EVENTS },
      topics: file.topics,
    },
    auth: file.auth,
    corsOrigins: e.CORS_ORIGINS,
    metrics: e.METRICS === 'true',
    tracing: tracingSettings(e),
    limits: {
      introspection: e.INTROSPECTION ? e.INTROSPECTION === 'true' : e.NODE_ENV !== 'production',
      maxRequestBytes: e.MAX_REQUEST_BYTES,
      batchLimit: e.BATCH_LIMIT,
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxCost: e.GRAPHQL_MAX_COST,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      wsMaxPayloadBytes: e.WS_MAX_PAYLOAD_BYTES,
      wsInitTimeoutMs: e.WS_INIT_TIMEOUT_MS,
      wsMaxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
    },
  };
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

function blankToUndefined(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === '' ? undefined : v]));
}
