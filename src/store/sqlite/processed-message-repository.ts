import { and, count, eq, sql } from 'drizzle-orm';
import { Batcher, type JobOutcome } from '../../util/batcher.js';
import type { ProcessedMessageRepository } from '../processed-message-repository.js';
import { settled, type SqliteDatabase } from './database.js';
import { processedMessages } from './tables.js';
import { processedList } from '../list-queries.js';

interface Record {
  readonly consumer: string;
  readonly eventId: string;
  readonly at: number;
}

export function createSqliteProcessedMessageRepository(database: SqliteDatabase): ProcessedMessageRepository {
  const { db, sqlite } = database;
  const has = sqlite.prepare<[string, string]>('select 1 from processed_messages where consumer = ? and event_id = ?').pluck();
  const insert = sqlite.prepare<[string, string, number]>(
    'insert into processed_messages (consumer, event_id, processed_at) values (?, ?, ?) on conflict do nothing',
  );
  const read = <T>(fn: () => T) => settled(() => database.read('read processed messages', fn));
  /** Records submitted and not committed yet: already "processed" for `has`. */
  const pending = new Set<string>();
  const keyOf = (consumer: string, eventId: string) => `${consumer}\u0000${eventId}`;
  // Successes of concurrent deliveries share one commit, without fsync (see the interface). Nobody
  // waits on these commits but the broker's ack (handler slots are free already), so a batch may
  // linger a millisecond for more: a commit costs several times a record.
  const records = new Batcher<Record, boolean>(
    (jobs) => {
      try {
        return database.write(() => jobs.map((job): JobOutcome<boolean> => ({ ok: true, value: insert.run(job.consumer, job.eventId, job.at).changes > 0 })), {
          relaxed: true,
        });
      } finally {
        for (const job of jobs) pending.delete(keyOf(job.consumer, job.eventId));
      }
    },
    { lingerMs: 1, maxJobs: 256 },
  );

  return {
    has: (consumer, eventId) => (pending.has(keyOf(consumer, eventId)) ? Promise.resolve(true) : read(() => has.get(consumer, eventId) !== undefined)),

    record: (consumer, eventId, now = Date.now()) => {
      pending.add(keyOf(consumer, eventId));
      return records.submit({ consumer, eventId, at: now });
    },

    get: (consumer, eventId) =>
      read(() =>
        db
          .select()
          .from(processedMessages)
          .where(and(eq(processedMessages.consumer, consumer), eq(processedMessages.eventId, eventId)))
          .get(),
      ),

    list: (consumer, page) =>
      read(() => {
        const { where, orderBy } = processedList(processedMessages, consumer, page);
        return db
          .select()
          .from(processedMessages)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit)
          .all();
      }),

    countByConsumer: () =>
      read(() => {
        const rows = db.select({ consumer: processedMessages.consumer, n: count() }).from(processedMessages).groupBy(processedMessages.consumer).all();
        return new Map(rows.map((r) => [r.consumer, r.n]));
      }),

    prune: (before, batchSize) =>
      settled(
        () =>
          database.write(() =>
            db.run(sql`delete from ${processedMessages} where rowid in (
              select rowid from ${processedMessages} where ${processedMessages.processedAt} < ${before} limit ${batchSize})`),
          ).changes,
      ),
  };
}
