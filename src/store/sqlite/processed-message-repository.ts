import { and, count, eq, sql } from 'drizzle-orm';
import type { JobOutcome } from '../../util/batcher.js';
import { batchedRecords, type ProcessedMessageRepository } from '../processed-message-repository.js';
import { settled, type SqliteDatabase } from './database.js';
import { processedMessages } from './tables.js';
import { processedList } from '../list-queries.js';

export function createSqliteProcessedMessageRepository(database: SqliteDatabase): ProcessedMessageRepository {
  const { db, sqlite } = database;
  const lookup = sqlite.prepare<[string, string]>('select 1 from processed_messages where consumer = ? and event_id = ?').pluck();
  const insert = sqlite.prepare<[string, string, number]>(
    'insert into processed_messages (consumer, event_id, processed_at) values (?, ?, ?) on conflict do nothing',
  );
  const read = <T>(fn: () => T) => settled(() => database.read('read processed messages', fn));
  // Successes of concurrent deliveries share one commit, without fsync (see the interface).
  const { has, record } = batchedRecords(
    (records) =>
      database.write(() => records.map((r): JobOutcome<boolean> => ({ ok: true, value: insert.run(r.consumer, r.eventId, r.at).changes > 0 })), {
        relaxed: true,
      }),
    (consumer, eventId) => read(() => lookup.get(consumer, eventId) !== undefined),
  );

  return {
    has,
    record,

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
