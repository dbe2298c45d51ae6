import { and, count, eq, sql } from 'drizzle-orm';
import { encodeEvent } from '../../events/codec.js';
import type { DeadLetterRepository } from '../dead-letter-repository.js';
import type { PostgresDatabase } from './database.js';
import { deadLetters } from './tables.js';
import { deadLetterList } from '../list-queries.js';

/**
 * `attemptsAfterFailure` and `statusAfterFailure` (see the interface file) in SQL, applied to the
 * row as it is when the upsert reaches it: two instances recording the same letter at once both
 * count, where a read-then-write would lose one.
 */
const ATTEMPTS_AFTER_FAILURE = sql`case when ${deadLetters.status} = 'REPLAYED'
  then ${deadLetters.attempts} + excluded.attempts
  else greatest(${deadLetters.attempts}, excluded.attempts) end`;
const STATUS_AFTER_FAILURE = sql`case when ${deadLetters.status} = 'DISCARDED' then 'DISCARDED' else 'DEAD' end`;

export function createPostgresDeadLetterRepository(database: PostgresDatabase): DeadLetterRepository {
  const { db } = database;
  const read = <T>(fn: () => Promise<T>) => database.run('read dead letters', fn);
  const write = <T>(fn: () => Promise<T>) => database.run('write dead letters', fn);

  return {
    record: (input, now = Date.now()) => {
      const at = new Date(now);
      return write(() =>
        db
          .insert(deadLetters)
          .values({
            consumer: input.consumer,
            topic: input.event.topic,
            eventId: input.event.id,
            event: encodeEvent(input.event).toString('utf8'),
            error: input.error.slice(0, 4000),
            attempts: input.attempts,
            status: 'DEAD',
            firstFailedAt: at,
            lastFailedAt: at,
            updatedAt: at,
          })
          .onConflictDoUpdate({
            target: [deadLetters.consumer, deadLetters.eventId],
            set: {
              error: sql`excluded.error`,
              attempts: ATTEMPTS_AFTER_FAILURE,
              status: STATUS_AFTER_FAILURE,
              lastFailedAt: sql`excluded.last_failed_at`,
              updatedAt: sql`excluded.updated_at`,
            },
          })
          .returning(),
      ).then((rows) => rows[0]!);
    },

    get: (id) => read(() => db.select().from(deadLetters).where(eq(deadLetters.id, id))).then((rows) => rows[0]),

    list: (filter, page) =>
      read(() => {
        const { where, orderBy } = deadLetterList(deadLetters, filter, page);
        return db
          .select()
          .from(deadLetters)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit);
      }),

    countByConsumer: (status) =>
      read(() =>
        db.select({ consumer: deadLetters.consumer, n: count() }).from(deadLetters).where(eq(deadLetters.status, status)).groupBy(deadLetters.consumer),
      ).then((rows) => new Map(rows.map((r) => [r.consumer, r.n]))),

    transition: (id, from, to, now = Date.now()) =>
      write(() =>
        db
          .update(deadLetters)
          .set({ status: to, updatedAt: new Date(now) })
          .where(and(eq(deadLetters.id, id), eq(deadLetters.status, from)))
          .returning(),
      ).then((rows) => rows[0]),
  };
}
