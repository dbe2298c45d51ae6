import { z } from 'zod';

/**
 * The one event shape the gateway moves around. It is a CloudEvents 1.0 event with the
 * extensions `topic`, `partitionkey`, `correlationid` and `causationid`; see `codec.ts` for how
 * it travels on a broker.
 */
export interface GatewayEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** Gateway topic: which stream of events this belongs to (`orders`). */
  readonly topic: string;
  readonly subject: string | null;
  readonly time: Date;
  readonly dataContentType: string;
  readonly data: unknown;
  /** Partition key: events with the same key keep their order. */
  readonly key: string | null;
  readonly correlationId: string | null;
  readonly causationId: string | null;
}

/**
 * Topics become parts of routing keys, subjects and Kafka topic names, so they are plain
 * tokens: no dots, no wildcards, no spaces. A leading letter or digit keeps the `_`-prefixed
 * names free for the gateway's own use.
 */
export const TOPIC_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/**
 * Types are dotted names (`com.example.order.created`); each segment must be a valid
 * NATS subject token and RabbitMQ routing-key word.
 */
export const TYPE_PATTERN = /^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$/;

export const topicSchema = z
  .string()
  .regex(TOPIC_PATTERN, 'topic must be 1-100 letters, digits, "_" or "-", starting with a letter or digit');

export const typeSchema = z
  .string()
  .max(200, 'type must be at most 200 characters')
  .regex(TYPE_PATTERN, 'type must be dot-separated words of letters, digits, "_", ":", "/" or "-"');

const shortText = (name: string, max: number) =>
  z.string().min(1, `${name} must not be empty`).max(max, `${name} must be at most ${max} characters`);

export const eventIdSchema = shortText('id', 200);
export const sourceSchema = shortText('source', 500);
export const subjectSchema = shortText('subject', 500);
export const keySchema = shortText('key', 256);
export const correlationIdSchema = shortText('correlationId', 200);
export const causationIdSchema = shortText('causationId', 200);

export const JSON_CONTENT_TYPE = 'application/json';
