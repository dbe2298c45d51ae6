import { and, count, eq, sql as drizzleSql } from 'drizzle-orm';
import type { ClaimedRow, OutboxRepository, PublishResult } from '../outbox-repository.js';
import { at, type PostgresDatabase } from './database.js';
import { createPostgresAppender, type AppendHooks } from './outbox-append.js';
import { outbox } from './tables.js';
import { outboxList } from '../list-queries.js';

/** What the store gives its outbox: local listeners to wake after commits and retries, and the NOTIFY for other instances. */
export type OutboxHooks = Omit<AppendHooks, 'release'>;

/**
 * The outbox on PostgreSQL. Same contract as the SQLite one; what differs is that several
 * instances write and claim at once, each in its own transaction:
 *
 * - Appends (`outbox-append.ts`) lock each key they write until they commit, so rows of one key
 *   are committed in id order across instances.
 * - The claim locks the head of each key (its oldest PENDING row) `FOR UPDATE SKIP LOCKED` and
 *   takes the head's due followers with it; a head another relay is claiming is skipped, and so
 *   are all rows behind it. Claims select by status, never by an id watermark, so a keyless row
 *   committed after later ids were published is still found.
 */
export function createPostgresOutboxRepository(database: PostgresDatabase, hooks: OutboxHooks): OutboxRepository {
  const { sql, db } = database;
  const read = <T>(fn: () => Promise<T>) => database.run('read the outbox', fn);
  const write = <T>(fn: () => Promise<T>) => database.run('write to the outbox', fn);

  // Bookkeeping (claims, settlements, leases) that a crash may lose without losing an event: the
  // relay then publishes a row again. Committed without waiting for the disk, as on SQLite.
  const release = (owner: string, ids: readonly number[]) =>
    write(
      () => sql`
        with relaxed as materialized (select set_config('synchronous_commit', 'off', true))
        update outbox set claimed_by = null, claim_expires_at = null
        from relaxed
        where id = any(${ids as number[]}::bigint[]) and claimed_by = ${owner} and status = 'PENDING'`,
    );

  return {
    ...createPostgresAppender(database, { ...hooks, release }),

    claim: ({ owner, limit, leaseMs, now = Date.now() }) =>
      write(
        () => sql<(Omit<ClaimedRow, 'createdAt'> & { createdAt: number })[]>`
          with relaxed as materialized (select set_config('synchronous_commit', 'off', true)),
          heads as (
            select o.id, o.key from outbox o
            where o.status = 'PENDING' and o.next_attempt_at <= ${at(now)}::timestamptz
              and (o.claim_expires_at is null or o.claim_expires_at <= ${at(now)}::timestamptz)
              and (o.key is null or not exists (
                select 1 from outbox p where p.status = 'PENDING' and p.key = o.key and p.id < o.id))
            order by o.id
            limit ${limit}
            for update of o skip locked
          ),
          followers as (
            select f.id from heads h
            cross join lateral (
              select o.id, bool_and(o.next_attempt_at <= ${at(now)}::timestamptz
                and (o.claim_expires_at is null or o.claim_expires_at <= ${at(now)}::timestamptz)) over (order by o.id) as open
              from outbox o
              where o.status = 'PENDING' and o.key = h.key and o.id > h.id
              order by o.id
              limit ${limit}
            ) f
            where h.key is not null and f.open
          ),
          chosen as (
            select id from heads union all select id from followers
            order by id
            limit ${limit}
          )
          update outbox o set claimed_by = ${owner}, claim_expires_at = ${at(now + leaseMs)}::timestamptz
          from relaxed
          where o.id in (select id from chosen) and o.status = 'PENDING'
          returning o.id, o.event_id as "eventId", o.key, o.attempts, o.body, (extract(epoch from o.created_at) * 1000)::float8 as "createdAt"`,
      ).then((rows) => rows.map((row): ClaimedRow => ({ ...row, createdAt: new Date(row.createdAt) })).sort((a, b) => a.id - b.id)),

    settle: (owner, results, now = Date.now()) => {
      if (results.length === 0) return Promise.resolve();
      const failed = (r: PublishResult) => (r.ok ? null : r);
      return write(
        () => sql`
          with relaxed as materialized (select set_config('synchronous_commit', 'off', true))
          update outbox o set
            status = r.status,
            attempts = o.attempts + case when r.status = 'PUBLISHED' then 0 else 1 end,
            last_error = case when r.status = 'PUBLISHED' then o.last_error else r.error end,
            published_at = case when r.status = 'PUBLISHED' then ${at(now)}::timestamptz else o.published_at end,
            next_attempt_at = coalesce(r.retry_at, o.next_attempt_at),
            claimed_by = null, claim_expires_at = null
          from relaxed, unnest(
            ${results.map((r) => r.id)}::bigint[],
            ${results.map((r) => (r.ok ? 'PUBLISHED' : r.retryAt === null ? 'FAILED' : 'PENDING'))}::text[],
            ${results.map((r) => failed(r)?.error.slice(0, 2000) ?? null)}::text[],
            ${results.map((r) => (r.ok ? null : at(r.retryAt ?? now)))}::text[]::timestamptz[]
          ) as r(id, status, error, retry_at)
          -- A published row is done whoever holds it; a failure is only its holder's to record:
          -- a row another relay took over after this relay's lease ran out is that relay's.
          where o.id = r.id and o.status = 'PENDING' and (r.status = 'PUBLISHED' or o.claimed_by = ${owner})`,
      ).then(() => undefined);
    },

    release: (owner, ids) => (ids.length === 0 ? Promise.resolve() : release(owner, ids).then(() => undefined)),

    renew: (owner, ids, leaseMs, now = Date.now()) =>
      ids.length === 0
        ? Promise.resolve()
        : write(
            () => sql`
              with relaxed as materialized (select set_config('synchronous_commit', 'off', true))
              update outbox set claim_expires_at = ${at(now + leaseMs)}::timestamptz
              from relaxed
              where id = any(${ids as number[]}::bigint[]) and claimed_by = ${owner} and status = 'PENDING'`,
          ).then(() => undefined),

    // Later rows of a key wait behind its first PENDING row, so only key heads and keyless rows count.
    nextDueAt: () =>
      read(
        () => sql<{ at: number | null }[]>`
          select (extract(epoch from min(greatest(o.next_attempt_at, o.claim_expires_at))) * 1000)::float8 as at
          from outbox o
          where o.id in (
            select min(id) from outbox where status = 'PENDING' and key is not null group by key
            union all
            select id from outbox where status = 'PENDING' and key is null)`,
      ).then((rows) => rows[0]?.at ?? null),

    get: (id) => read(() => db.select().from(outbox).where(eq(outbox.id, id))).then((rows) => rows[0]),

    getByEventId: (eventId) => read(() => db.select().from(outbox).where(eq(outbox.eventId, eventId))).then((rows) => rows[0]),

    list: (filter, page) =>
      read(() => {
        const { where, orderBy } = outboxList(outbox, filter, page);
        return db
          .select()
          .from(outbox)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit);
      }),

    count: (status) => read(() => db.select({ n: count() }).from(outbox).where(eq(outbox.status, status))).then((rows) => rows[0]?.n ?? 0),

    // FAILED has no index of its own: it is what remains of the total once the PENDING and
    // PUBLISHED rows (partial indexes) are taken away; one statement, so one snapshot.
    summary: () =>
      read(
        () => sql<{ pending: number; published: number; total: number; oldestPendingAt: number | null }[]>`
          select
            (select count(*) from outbox where status = 'PENDING') as pending,
            (select count(*) from outbox where status = 'PUBLISHED') as published,
            (select count(*) from outbox) as total,
            (select (extract(epoch from created_at) * 1000)::float8 from outbox where status = 'PENDING' order by id limit 1) as "oldestPendingAt"`,
      ).then(([row]) => ({
        counts: { PENDING: row!.pending, PUBLISHED: row!.published, FAILED: row!.total - row!.pending - row!.published },
        oldestPendingAt: row!.oldestPendingAt === null ? null : new Date(row!.oldestPendingAt),
      })),

    retry: (id, now = Date.now()) =>
      write(() =>
        db.transaction(async (tx) => {
          const [row] = await tx
            .update(outbox)
            .set({ status: 'PENDING', nextAttemptAt: new Date(now), claimedBy: null, claimExpiresAt: null })
            .where(and(eq(outbox.id, id), eq(outbox.status, 'FAILED')))
            .returning();
          if (row) await tx.execute(drizzleSql`select pg_notify(${hooks.notify.channel}, ${hooks.notify.payload})`);
          return row;
        }),
      ).then((row) => {
        if (row) hooks.changed();
        return row;
      }),

    prunePublished: (before, batchSize) =>
      write(
        () => sql`
          delete from outbox where id in (
            select id from outbox where status = 'PUBLISHED' and published_at <= ${at(before)}::timestamptz
            order by published_at limit ${batchSize})`,
      ).then((result) => result.count),
  };
}
