import { z } from 'zod';
import { WEBHOOK_SECRET_PATTERN } from '../consumers/handlers/webhook-signature.js';
import { topicSchema, typeSchema } from '../events/event.js';

/**
 * The JSON file named by `GATEWAY_CONFIG`: durable consumers, per-topic broker settings and
 * authorization. Every field carries its description, so `config.schema.json` (generated from
 * this schema by `npm run config:schema`, committed, drift-tested) gives editors completion and
 * hover help for a file that starts with `"$schema": "./config.schema.json"`.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

const webhookSecretSchema = z.string().regex(WEBHOOK_SECRET_PATTERN, 'must be "whsec_" followed by the key in base64 (Standard Webhooks)');

const backoffSchema = z
  .strictObject({
    initialMs: int(0, 86_400_000).default(1000).describe('Delay before the first retry, in milliseconds.'),
    maxMs: int(0, 86_400_000).default(60_000).describe("Longest delay between attempts (also caps a webhook's Retry-After), in milliseconds."),
    multiplier: z.number().min(1).max(100).default(2).describe('Each retry waits this many times longer than the one before.'),
    jitter: z.number().min(0).max(1).default(0.2).describe('Random spread of each delay, as a fraction (0.2: ±20 %).'),
  })
  .refine((b) => b.maxMs >= b.initialMs, { message: 'maxMs must be at least initialMs' })
  .default({ initialMs: 1000, maxMs: 60_000, multiplier: 2, jitter: 0.2 })
  .describe('Delay before retry n: initialMs × multiplier^(n-1), capped at maxMs, spread by jitter.');

const webhookSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .describe('Receives a POST of the structured CloudEvent (application/cloudevents+json).'),
    timeoutMs: int(1, 300_000).default(5000).describe('A call that has not answered by then is cut off; that attempt failed.'),
    headers: z.record(z.string(), z.string()).default({}).describe('Extra request headers, e.g. an authorization token for the receiver.'),
    // The message never repeats the value.
    secret: z
      .union([webhookSecretSchema, z.array(webhookSecretSchema).min(1, 'give at least one secret, or leave "secret" out')])
      .transform((secret) => (Array.isArray(secret) ? secret : [secret]))
      .optional()
      .describe('Standard Webhooks signing secret "whsec_…", or a list of them while rotating: adds webhook-id, webhook-timestamp and webhook-signature.'),
  })
  .describe('Deliver each event to this HTTP endpoint; a 2xx answer means done.');

const consumerSchema = z
  .strictObject({
    name: z
      .string()
      .regex(NAME_PATTERN, 'must be 1-100 letters, digits, "_" or "-", starting with a letter or digit')
      .describe('Unique; also the broker-side queue / group / durable consumer name.'),
    topic: topicSchema.describe('The topic to consume.'),
    types: z.array(typeSchema).optional().describe('Event types to handle; others are acknowledged and skipped. Absent: all.'),
    webhook: webhookSchema.optional(),
    maxAttempts: int(1, 1000).default(5).describe('Handler runs (the first included) before the event is dead-lettered.'),
    backoff: backoffSchema,
    prefetch: int(1, 10_000).default(10).describe('Deliveries one gateway process handles at once; the broker holds up to twice as many for it.'),
  })
  .describe('A durable consumer: bounded retries with backoff, idempotent, dead-letters what keeps failing.');

const topicSettingsSchema = z.strictObject({
  ttlMs: int(1, Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('Messages older than this are dropped by the broker where it supports a TTL (RabbitMQ x-message-ttl, Kafka retention.ms).'),
  partitions: int(1, 10_000).optional().describe('Kafka partitions for this topic (default KAFKA_PARTITIONS).'),
});

const SCOPE_PATTERN = /^(admin|(publish|subscribe):[A-Za-z0-9_:/.*-]+)$/;
const scopesSchema = z
  .array(z.string().regex(SCOPE_PATTERN, 'must be "admin", "publish:<topic-pattern>" or "subscribe:<topic-pattern>"'))
  .describe('"admin", "publish:<topic-pattern>" or "subscribe:<topic-pattern>" ("*" matches within a dot-separated segment).');

const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

const jwtSchema = z
  .strictObject({
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['HS256']).describe('Accepted signing algorithms.'),
    secretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional()
      .describe('Name of the environment variable holding the shared secret (HS*).'),
    publicKeyFile: z.string().min(1).optional().describe('PEM file with the public key (RS*, PS*, ES*, EdDSA).'),
    issuer: z.string().min(1).describe('Required "iss" claim.'),
    audience: z.string().min(1).describe('Required "aud" claim.'),
    scopesClaim: z.string().min(1).default('scope').describe('Claim holding the scopes: a space-separated string or an array.'),
    clockToleranceSec: int(0, 3600).default(30).describe('Tolerated clock difference, in seconds.'),
  })
  .refine((j) => Boolean(j.secretEnv) !== Boolean(j.publicKeyFile), {
    message: 'set exactly one of secretEnv (HS*) and publicKeyFile (RS*, PS*, ES*, EdDSA)',
  })
  .refine((j) => (j.secretEnv ? j.algorithms.every((a) => a.startsWith('HS')) : j.algorithms.every((a) => !a.startsWith('HS'))), {
    message: 'algorithms must be HS* with secretEnv, and RS*, PS*, ES* or EdDSA with publicKeyFile',
  })
  .describe('Bearer tokens (JWT) verified with a shared secret or a public key.');

const authSchema = z
  .strictObject({
    apiKeys: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(100).describe('Shown in logs instead of the key.'),
          sha256: z
            .string()
            .regex(/^[0-9a-f]{64}$/, "must be the key's SHA-256 as 64 lowercase hex digits")
            .describe('SHA-256 of the key (64 lowercase hex digits); `npm run auth:new-key` makes a key and its hash.'),
          scopes: scopesSchema,
        }),
      )
      .default([])
      .describe('API keys (sent as x-api-key), stored as SHA-256 hashes only.'),
    jwt: jwtSchema.optional(),
  })
  .refine((a) => a.apiKeys.length > 0 || a.jwt !== undefined, { message: 'configure apiKeys, jwt, or both' })
  .describe('Authorization; absent, the gateway runs open (and says so at start).');

export const fileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('The JSON Schema of this file, for editors (e.g. "./config.schema.json"); ignored by the gateway.'),
    consumers: z.array(consumerSchema).default([]).describe('Durable consumers.'),
    topics: z.record(topicSchema, topicSettingsSchema).default({}).describe('Per-topic broker settings, by topic name.'),
    auth: authSchema.optional(),
  })
  .describe('event-gateway configuration file (GATEWAY_CONFIG)');

export type ConfigFile = z.infer<typeof fileSchema>;
export type AuthConfig = z.infer<typeof authSchema>;
export type TopicSettings = z.infer<typeof topicSettingsSchema>;
export type ConsumerConfig = z.infer<typeof consumerSchema>;

/** The JSON Schema of the config file, as editors and validators read it (the input side). */
export function configFileJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(fileSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
