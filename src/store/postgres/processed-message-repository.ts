import { and, count, eq } from 'drizzle-orm';
import { Batcher, type JobOutcome } from '../../util/batcher.js';
import { batchedRecords, processedKey, type ProcessedMessageRepository } from '../processed-message-repository.js';
import { at, type PostgresDatabase } from './database.js';
import { processedMessages } from './tables.js';
import { processedList } from '../list-queries.js';

interface Delivery {
  readonly consumer: string;
  readonly eventId: string;
}

export function createPostgresProcessedMessageRepository(database: PostgresDatabase): ProcessedMessageRepository {
  const { sql, db } = database;
  const read = <T>(fn: () => Promise<T>) => database.run('read processed messages', fn);
  // Look-ups of concurrent deliveries share one query.
  const lookups = new Batcher<Delivery, boolean>(async (jobs) => {
    const found = await read(
      () => sql<Delivery[]>`
        select consumer, event_id as "eventId" from processed_messages
        where (consumer, event_id) in (select * from unnest(${jobs.map((j) => j.consumer)}::text[], ${jobs.map((j) => j.eventId)}::text[]))`,
    );
    const seen = new Set(found.map((row) => processedKey(row.consumer, row.eventId)));
    return jobs.map((job): JobOutcome<boolean> => ({ ok: true, value: seen.has(processedKey(job.consumer, job.eventId)) }));
  });

  // Successes of concurrent deliveries share one insert (times as text: see the outbox's `at`),
  // committed without waiting for the disk (see the interface).
  const { has, record } = batchedRecords(
    async (records) => {
      const inserted = await database.run(
        'record processed messages',
        () => sql<Delivery[]>`
        with relaxed as materialized (select set_config('synchronous_commit', 'off', true))
        insert into processed_messages (consumer, event_id, processed_at)
        select r.consumer, r.event_id, r.at
        from relaxed, unnest(${records.map((j) => j.consumer)}::text[], ${records.map((j) => j.eventId)}::text[],
                             ${records.map((j) => at(j.at))}::text[]::timestamptz[]) with ordinality as r(consumer, event_id, at, ord)
        order by r.ord
        on conflict do nothing
        returning consumer, event_id as "eventId"`,
      );
      // The same delivery twice in one batch is inserted once: the first job gets true.
      const fresh = new Set(inserted.map((row) => processedKey(row.consumer, row.eventId)));
      return records.map((job): JobOutcome<boolean> => ({ ok: true, value: fresh.delete(processedKey(job.consumer, job.eventId)) }));
    },
    (consumer, eventId) => lookups.submit({ consumer, eventId }),
  );

  return {
    has,
    record,

    get: (consumer, eventId) =>
      read(() =>
        db
          .select()
          .from(processedMessages)
          .where(and(eq(processedMessages.consumer, consumer), eq(processedMessages.eventId, eventId))),
      ).then((rows) => rows[0]),

    list: (consumer, page) =>
      read(() => {
        const { where, orderBy } = processedList(processedMessages, consumer, page);
        return db
          .select()
          .from(processedMessages)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit);
      }),

    countByConsumer: () =>
      read(() => db.select({ consumer: processedMessages.consumer, n: count() }).from(processedMessages).groupBy(processedMessages.consumer)).then(
        (rows) => new Map(rows.map((r) => [r.consumer, r.n])),
      ),

    prune: (before, batchSize) =>
      database
        .run(
          'prune processed messages',
          () => sql`
            delete from processed_messages where ctid = any(array(
              select ctid from processed_messages where processed_at < ${at(before)}::timestamptz limit ${batchSize}))`,
        )
        .then((result) => result.count),
  };
}
