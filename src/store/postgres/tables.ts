import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, primaryKey, text, timestamp as pgTimestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { DEAD_LETTER_STATUSES } from '../dead-letter-repository.js';
import { OUTBOX_STATUSES } from '../outbox-repository.js';

// Milliseconds, as JavaScript dates carry them: a stored time reads back equal to the one written.
const timestamp = (name: string) => pgTimestamp(name, { withTimezone: true, precision: 3, mode: 'date' });
// Read as JS numbers: 2^53 ids is more than an outbox will ever hand out.
const id = () => bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity();

/**
 * The PostgreSQL twin of `../sqlite/tables.ts`: same tables, columns and partial indexes (see
 * there for what each is for). `id` is an identity: unlike SQLite's, it follows insert order, not
 * commit order, across concurrent transactions, so the relay claims by status, never by an id
 * watermark.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: id(),
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
    index('outbox_pending_idx').on(t.id).where(sql`${t.status} = 'PENDING'`),
    index('outbox_pending_key_idx').on(t.key, t.id).where(sql`${t.status} = 'PENDING' and ${t.key} is not null`),
    index('outbox_published_at_idx').on(t.publishedAt).where(sql`${t.status} = 'PUBLISHED'`),
  ],
);

export const deadLetters = pgTable(
  'dead_letters',
  {
    id: id(),
    consumer: text('consumer').notNull(),
    topic: text('topic').notNull(),
    eventId: text('event_id').notNull(),
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

export const processedMessages = pgTable(
  'processed_messages',
  {
    consumer: text('consumer').notNull(),
    eventId: text('event_id').notNull(),
    processedAt: timestamp('processed_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.consumer, t.eventId] }),
    index('processed_messages_consumer_at_idx').on(t.consumer, t.processedAt),
    index('processed_messages_at_idx').on(t.processedAt),
  ],
);

export const tables = { outbox, deadLetters, processedMessages };
