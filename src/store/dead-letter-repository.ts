import { and, asc, count, desc, eq, gt, lt, type SQL } from 'drizzle-orm';
import { decodeStoredEvent, encodeEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import { guard, type Store } from './database.js';
import { decodeNumericCursor, encodeCursor, type PageRequest } from './pagination.js';
import { deadLetters, type DeadLetterStatus } from './tables.js';

export type DeadLetterRow = typeof deadLetters.$inferSelect;

export interface DeadLetterInput {
  readonly consumer: string;
  readonly event: GatewayEvent;
  readonly error: string;
  /** Handler attempts in the run that ended in this dead letter. */
  readonly attempts: number;
}

export interface DeadLetterFilter {
  readonly consumer?: string | undefined;
  readonly topic?: string | undefined;
  readonly status?: DeadLetterStatus | undefined;
}

export interface DeadLetterRepository {
  /**
   * Records that `consumer` gave up on `event`. One row per consumer and event: a letter that was
   * replayed and failed again goes back to DEAD with its attempts added up; a redelivered
   * duplicate of a letter that is already DEAD only refreshes it.
   */
  record(input: DeadLetterInput, now?: number): DeadLetterRow;
  get(id: number): DeadLetterRow | undefined;
  list(filter: DeadLetterFilter, page: PageRequest): DeadLetterRow[];
  countByConsumer(status: DeadLetterStatus): Map<string, number>;
  /** Moves a letter from one status to another; undefined when it was not in `from`. */
  transition(id: number, from: DeadLetterStatus, to: DeadLetterStatus, now?: number): DeadLetterRow | undefined;
}

/** Newest first: the list an operator looks at is "what broke lately". */
export const deadLetterCursor = (row: DeadLetterRow) => encodeCursor('dead-letter', row.id);

export function createDeadLetterRepository(store: Store): DeadLetterRepository {
  const { db } = store;

  return {
    record(input, now = Date.now()) {
      const at = new Date(now);
      const error = input.error.slice(0, 4000);
      return store.transaction(() => {
        const existing = db
          .select()
          .from(deadLetters)
          .where(and(eq(deadLetters.consumer, input.consumer), eq(deadLetters.eventId, input.event.id)))
          .get();
        if (!existing) {
          return db
            .insert(deadLetters)
            .values({
              consumer: input.consumer,
              topic: input.event.topic,
              eventId: input.event.id,
              event: encodeEvent(input.event).toString('utf8'),
              error,
              attempts: input.attempts,
              status: 'DEAD',
              firstFailedAt: at,
              lastFailedAt: at,
              updatedAt: at,
            })
            .returning()
            .get();
        }
        const attempts =
          existing.status === 'REPLAYED' ? existing.attempts + input.attempts : Math.max(existing.attempts, input.attempts);
        return db
          .update(deadLetters)
          .set({
            error,
            attempts,
            // An operator's discard stands even if the broker hands the message over once more.
            status: existing.status === 'DISCARDED' ? 'DISCARDED' : 'DEAD',
            lastFailedAt: at,
            updatedAt: at,
          })
          .where(eq(deadLetters.id, existing.id))
          .returning()
          .get()!;
      });
    },

    get(id) {
      return guard('read dead letters', () => db.select().from(deadLetters).where(eq(deadLetters.id, id)).get());
    },

    list(filter, page) {
      const after = decodeNumericCursor('dead-letter', page.after);
      const before = decodeNumericCursor('dead-letter', page.before);
      const where: SQL[] = [];
      if (filter.consumer !== undefined) where.push(eq(deadLetters.consumer, filter.consumer));
      if (filter.topic !== undefined) where.push(eq(deadLetters.topic, filter.topic));
      if (filter.status !== undefined) where.push(eq(deadLetters.status, filter.status));
      // List order is newest first, so "after" means older.
      if (after !== undefined) where.push(lt(deadLetters.id, after));
      if (before !== undefined) where.push(gt(deadLetters.id, before));
      return guard('read dead letters', () =>
        db
          .select()
          .from(deadLetters)
          .where(and(...where))
          .orderBy(page.inverted ? asc(deadLetters.id) : desc(deadLetters.id))
          .limit(page.limit)
          .all(),
      );
    },

    countByConsumer(status) {
      const rows = guard('read dead letters', () =>
        db
          .select({ consumer: deadLetters.consumer, n: count() })
          .from(deadLetters)
          .where(eq(deadLetters.status, status))
          .groupBy(deadLetters.consumer)
          .all(),
      );
      return new Map(rows.map((r) => [r.consumer, r.n]));
    },

    transition(id, from, to, now = Date.now()) {
      return store.transaction(() =>
        db
          .update(deadLetters)
          .set({ status: to, updatedAt: new Date(now) })
          .where(and(eq(deadLetters.id, id), eq(deadLetters.status, from)))
          .returning()
          .get(),
      );
    },
  };
}

/** The stored event, as the gateway encoded it when it recorded the letter. */
export function deadLetterEvent(row: DeadLetterRow): GatewayEvent {
  return decodeStoredEvent(row.event);
}
