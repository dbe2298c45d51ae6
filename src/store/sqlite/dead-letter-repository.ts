import { and, count, eq } from 'drizzle-orm';
import { encodeEvent } from '../../events/codec.js';
import { attemptsAfterFailure, statusAfterFailure, type DeadLetterRepository } from '../dead-letter-repository.js';
import { settled, type SqliteDatabase } from './database.js';
import { deadLetters } from './tables.js';
import { deadLetterList } from '../list-queries.js';

export function createSqliteDeadLetterRepository(database: SqliteDatabase): DeadLetterRepository {
  const { db } = database;
  const read = <T>(fn: () => T) => settled(() => database.read('read dead letters', fn));
  const write = <T>(fn: () => T) => settled(() => database.write(fn));

  return {
    record: (input, now = Date.now()) => {
      const at = new Date(now);
      const error = input.error.slice(0, 4000);
      return write(() => {
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
        return db
          .update(deadLetters)
          .set({
            error,
            attempts: attemptsAfterFailure(existing, input.attempts),
            status: statusAfterFailure(existing),
            lastFailedAt: at,
            updatedAt: at,
          })
          .where(eq(deadLetters.id, existing.id))
          .returning()
          .get()!;
      });
    },

    get: (id) => read(() => db.select().from(deadLetters).where(eq(deadLetters.id, id)).get()),

    list: (filter, page) =>
      read(() => {
        const { where, orderBy } = deadLetterList(deadLetters, filter, page);
        return db
          .select()
          .from(deadLetters)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit)
          .all();
      }),

    countByConsumer: (status) =>
      read(() => {
        const rows = db
          .select({ consumer: deadLetters.consumer, n: count() })
          .from(deadLetters)
          .where(eq(deadLetters.status, status))
          .groupBy(deadLetters.consumer)
          .all();
        return new Map(rows.map((r) => [r.consumer, r.n]));
      }),

    transition: (id, from, to, now = Date.now()) =>
      write(() =>
        db
          .update(deadLetters)
          .set({ status: to, updatedAt: new Date(now) })
          .where(and(eq(deadLetters.id, id), eq(deadLetters.status, from)))
          .returning()
          .get(),
      ),
  };
}
