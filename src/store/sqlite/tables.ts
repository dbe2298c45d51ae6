import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { DEAD_LETTER_STATUSES } from '../dead-letter-repository.js';
import { OUTBOX_STATUSES } from '../outbox-repository.js';

const timestamp = (name: string) => integer(name, { mode: 'timestamp_ms' });

/**
 * Events waiting for (or done with) the relay. `id` is the commit order the relay follows.
 * `body` is the event exactly as it goes on the wire (structured CloudEvent JSON), written once
 * by the mutation, so the relay sends stored bytes instead of re-encoding; `topic`, `type` and
 * `key` are copied out for filtering and ordering. A row is claimed by one relay at a time
 * (`claimed_by` until `claim_expires_at`).
 */
export const outbox = sqliteTable(
  'outbox',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    eventId: text('event_id').notNull(),
    topic: text('topic').notNull(),
    type: text('type').notNull(),
    key: text('key'),
    body: text('body').notNull(),
    status: text('status', { enum: OUTBOX_STATUSES }).notNull().default('PENDING'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: timestamp('created_at').notNull(),
    publishedAt: timestamp('published_at'),
    nextAttemptAt: timestamp('next_attempt_at').notNull(),
    claimedBy: text('claimed_by'),
    claimExpiresAt: timestamp('claim_expires_at'),
  },
  (t) => [
    uniqueIndex('outbox_event_id_unique').on(t.eventId),
    // Partial indexes hold PENDING rows only: publishing a row removes two small index entries
    // instead of rewriting a status index, and PUBLISHED rows cost no index space.
    index('outbox_pending_idx').on(t.id).where(sql`${t.status} = 'PENDING'`),
    // For the claim: "is an earlier row of this key still pending?"
    index('outbox_pending_key_idx').on(t.key, t.id).where(sql`${t.status} = 'PENDING' and ${t.key} is not null`),
    // For pruning: finds rows past their retention without scanning the table.
    index('outbox_published_at_idx').on(t.publishedAt).where(sql`${t.status} = 'PUBLISHED'`),
  ],
);

/** Events a consumer gave up on after its last attempt, one row per consumer and event. */
export const deadLetters = sqliteTable(
  'dead_letters',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    consumer: text('consumer').notNull(),
    topic: text('topic').notNull(),
    eventId: text('event_id').notNull(),
    /** The structured CloudEvent JSON. */
    event: text('event').notNull(),
    error: text('error').notNull(),
    attempts: integer('attempts').notNull(),
    status: text('status', { enum: DEAD_LETTER_STATUSES }).notNull().default('DEAD'),
    firstFailedAt: timestamp('first_failed_at').notNull(),
    lastFailedAt: timestamp('last_failed_at').notNull(),
    updatedAt: timestamp('updated_at').notNull(),
  },
  (t) => [
    uniqueIndex('dead_letters_consumer_event_unique').on(t.consumer, t.eventId),
    index('dead_letters_status_idx').on(t.status, t.consumer),
    index('dead_letters_topic_idx').on(t.topic),
  ],
);

/** Idempotent consumer: the events each consumer has handled successfully. */
export const processedMessages = sqliteTable(
  'processed_messages',
  {
    consumer: text('consumer').notNull(),
    eventId: text('event_id').notNull(),
    processedAt: timestamp('processed_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.consumer, t.eventId] }),
    index('processed_messages_consumer_at_idx').on(t.consumer, t.processedAt),
    // For pruning across all consumers.
    index('processed_messages_at_idx').on(t.processedAt),
  ],
);

export const tables = { outbox, deadLetters, processedMessages };
