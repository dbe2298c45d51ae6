import { and, asc, eq, inArray, lte, sql } from 'drizzle-orm';
import { encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import { Batcher, type JobOutcome } from '../../util/batcher.js';
import type { AppendResult, ClaimedRow, OutboxRepository, OutboxStatus, OutboxTaker } from '../outbox-repository.js';
import { outboxRowToEvent } from '../outbox-repository.js';
import { isUnavailable, settled, type SqliteDatabase } from './database.js';
import { outbox } from './tables.js';
import { outboxList } from '../list-queries.js';

const INSERT_SQL = `
  insert into outbox (event_id, topic, type, key, body, status, attempts, created_at, next_attempt_at, claimed_by, claim_expires_at)
  values (@eventId, @topic, @type, @key, @body, 'PENDING', 0, @now, @now, @owner, @expires)
  on conflict (event_id) do nothing
  returning id`;
/** Inside the append's transaction this also sees rows written earlier in the same group. */
const KEY_PENDING_SQL = `select 1 from outbox where status = 'PENDING' and key = ? limit 1`;
const EXISTING_SQL = `select id, body from outbox where event_id = ?`;

/** Cheap look before the claim's write transaction: is any row due and unclaimed at all? */
const ANY_DUE_SQL = `
  select 1 from outbox
  where status = 'PENDING' and next_attempt_at <= @now and (claim_expires_at is null or claim_expires_at <= @now)
  limit 1`;

/**
 * The relay's claim: the oldest due, unclaimed PENDING rows whose key has no earlier PENDING row
 * that is claimed or backing off. (An earlier due row of the same key comes first in id order,
 * so it is claimed in the same batch or keeps this one out by the LIMIT.)
 */
const CLAIMABLE_SQL = `
  select o.id from outbox o
  where o.status = 'PENDING' and o.next_attempt_at <= @now
    and (o.claim_expires_at is null or o.claim_expires_at <= @now)
    and (o.key is null or not exists (
      select 1 from outbox p
      where p.status = 'PENDING' and p.key = o.key and p.id < o.id
        and (p.next_attempt_at > @now or p.claim_expires_at > @now)))
  order by o.id
  limit @limit`;
// Separate statements: UPDATE … RETURNING of whole rows costs several times more in SQLite.
const MARK_CLAIMED_SQL = `update outbox set claimed_by = @owner, claim_expires_at = @expires where id in (select value from json_each(@ids))`;
const READ_CLAIMED_SQL = `select id, event_id as eventId, key, attempts, body, created_at as createdAt from outbox where id in (select value from json_each(@ids)) order by id`;

// FAILED has no index of its own: it is what remains of the total (a walk over the smallest index)
// once the PENDING and PUBLISHED rows (partial indexes) are taken away, all in one snapshot.
const SUMMARY_SQL = `
  select p.pending, p.published, t.total - p.pending - p.published as failed, p.oldestPendingAt
  from (select
          (select count(*) from outbox where status = 'PENDING') as pending,
          (select count(*) from outbox where status = 'PUBLISHED') as published,
          (select created_at from outbox where status = 'PENDING' order by id limit 1) as oldestPendingAt) p,
       (select count(*) as total from outbox) t`;

// Later rows of a key wait behind its first PENDING row, so only key heads and keyless rows count.
// The heads come from a GROUP BY over the partial key index, not a subquery per pending row.
const NEXT_CLAIMABLE_SQL = `
  select min(max(o.next_attempt_at, coalesce(o.claim_expires_at, 0))) from outbox o
  where o.id in (
    select min(id) from outbox where status = 'PENDING' and key is not null group by key
    union all
    select id from outbox where status = 'PENDING' and key is null)`;

// A row another relay took over after our lease ran out is that relay's to settle.
const FAILED_SQL = `
  update outbox set status = @status, attempts = attempts + 1, last_error = @error, next_attempt_at = @retryAt,
    claimed_by = null, claim_expires_at = null
  where id = @id and status = 'PENDING' and claimed_by = @owner`;
const PUBLISHED_SQL = `
  update outbox set status = 'PUBLISHED', published_at = @now, claimed_by = null, claim_expires_at = null
  where id in (select value from json_each(@ids)) and status = 'PENDING'`;
const RELEASE_SQL = `
  update outbox set claimed_by = null, claim_expires_at = null
  where id in (select value from json_each(@ids)) and claimed_by = @owner and status = 'PENDING'`;
const RENEW_SQL = `
  update outbox set claim_expires_at = @expires
  where id in (select value from json_each(@ids)) and claimed_by = @owner and status = 'PENDING'`;

export function createSqliteOutboxRepository(database: SqliteDatabase, hooks: { onAppend?: () => void } = {}): OutboxRepository {
  const { db, sqlite } = database;
  const insert = sqlite
    .prepare<{ eventId: string; topic: string; type: string; key: string | null; body: string; now: number; owner: string | null; expires: number | null }>(
      INSERT_SQL,
    )
    .pluck();
  const keyPending = sqlite.prepare<[string]>(KEY_PENDING_SQL).pluck();
  const existing = sqlite.prepare<[string]>(EXISTING_SQL);
  const anyDue = sqlite.prepare<{ now: number }>(ANY_DUE_SQL).pluck();
  const claimable = sqlite.prepare<{ now: number; limit: number }>(CLAIMABLE_SQL).pluck();
  const markClaimed = sqlite.prepare<{ owner: string; expires: number; ids: string }>(MARK_CLAIMED_SQL);
  const readClaimed = sqlite.prepare<{ ids: string }>(READ_CLAIMED_SQL);
  const published = sqlite.prepare<{ now: number; ids: string }>(PUBLISHED_SQL);
  const failed = sqlite.prepare<{ id: number; owner: string; status: OutboxStatus; error: string; retryAt: number }>(FAILED_SQL);
  const release = sqlite.prepare<{ owner: string; ids: string }>(RELEASE_SQL);
  const renew = sqlite.prepare<{ owner: string; expires: number; ids: string }>(RENEW_SQL);
  const nextClaimable = sqlite.prepare(NEXT_CLAIMABLE_SQL).pluck();
  const summary = sqlite.prepare(SUMMARY_SQL);

  let taker: OutboxTaker | undefined;

  /** Rows the relay may take from one group commit: its capacity, and only keys with nothing pending. */
  interface HandOff {
    readonly owner: string;
    readonly expires: number;
    /** The group's `created_at`, one Date shared by every row handed over. */
    readonly createdAt: Date;
    budget: number;
  }

  // One mutation's events, inside the group's transaction: a savepoint, so that a mutation that
  // fails (a constraint) rolls back alone and leaves its neighbours in the group committed.
  const appendOne = sqlite.transaction((events: readonly GatewayEvent[], now: number, handOff: HandOff | null, handed: ClaimedRow[]) =>
    events.map((event): AppendResult => {
      const body = encodeEvent(event).toString('utf8');
      const take = handOff !== null && handOff.budget > 0 && (event.key === null || keyPending.get(event.key) === undefined);
      const id = insert.get({
        eventId: event.id,
        topic: event.topic,
        type: event.type,
        key: event.key,
        body,
        now,
        owner: take ? handOff.owner : null,
        expires: take ? handOff.expires : null,
      }) as number | undefined;
      if (id !== undefined) {
        if (take) {
          handOff.budget--;
          handed.push({ id, eventId: event.id, key: event.key, attempts: 0, body, createdAt: handOff.createdAt, event });
        }
        return { id, duplicate: false, event };
      }
      const stored = existing.get(event.id) as { id: number; body: string } | undefined;
      if (!stored) throw new Error(`outbox conflict on event ${event.id} but no row found`);
      return { id: stored.id, duplicate: true, event: outboxRowToEvent(stored) };
    }),
  );

  const appends = new Batcher<readonly GatewayEvent[], AppendResult[]>((jobs) => {
    const now = Date.now();
    const budget = taker?.capacity() ?? 0;
    const handOff: HandOff | null = taker && budget > 0 ? { owner: taker.owner, expires: now + taker.leaseMs, createdAt: new Date(now), budget } : null;
    const handed: ClaimedRow[] = [];
    let unclaimed = false;
    const outcomes = database.write(() =>
      jobs.map((events): JobOutcome<AppendResult[]> => {
        const mark = handed.length;
        try {
          const results = appendOne(events, now, handOff, handed);
          unclaimed ||= results.filter((r) => !r.duplicate).length > handed.length - mark;
          return { ok: true, value: results };
        } catch (error) {
          // This mutation's savepoint is rolled back: none of its rows exist to be handed over.
          if (handOff) handOff.budget += handed.length - mark;
          handed.length = mark;
          // The store itself failing takes the whole group down: nothing of it is written.
          if (isUnavailable(error)) throw error;
          return { ok: false, error };
        }
      }),
    );
    if (handed.length > 0) taker!.take(handed);
    // Rows left unclaimed wait for a relay's claim: wake it.
    if (unclaimed) hooks.onAppend?.();
    return outcomes;
  });

  const read = <T>(fn: () => T) => settled(() => database.read('read the outbox', fn));
  const write = <T>(fn: () => T, relaxed = false) => settled(() => database.write(fn, { relaxed }));

  return {
    append: (events) => (events.length === 0 ? Promise.resolve([]) : appends.submit(events)),

    handOffTo(next) {
      taker = next;
    },

    claim: ({ owner, limit, leaseMs, now = Date.now() }) =>
      // Most wake-ups under a steady stream find the rows already claimed: look before locking.
      read(() => anyDue.get({ now }) !== undefined).then((due) =>
        !due
          ? []
          : write(() => {
              const ids = claimable.all({ now, limit }) as number[];
              if (ids.length === 0) return [];
              const json = JSON.stringify(ids);
              markClaimed.run({ owner, expires: now + leaseMs, ids: json });
              return (readClaimed.all({ ids: json }) as (Omit<ClaimedRow, 'createdAt'> & { createdAt: number })[]).map(
                (row): ClaimedRow => ({ ...row, createdAt: new Date(row.createdAt) }),
              );
            }, true),
      ),

    settle: (owner, results, now = Date.now()) => {
      if (results.length === 0) return Promise.resolve();
      const ok = results.filter((r) => r.ok).map((r) => r.id);
      return write(() => {
        if (ok.length > 0) published.run({ now, ids: JSON.stringify(ok) });
        for (const result of results) {
          if (result.ok) continue;
          failed.run({
            id: result.id,
            owner,
            status: result.retryAt === null ? 'FAILED' : 'PENDING',
            error: result.error.slice(0, 2000),
            retryAt: result.retryAt ?? now,
          });
        }
      }, true);
    },

    release: (owner, ids) => (ids.length === 0 ? Promise.resolve() : write(() => void release.run({ owner, ids: JSON.stringify(ids) }), true)),

    renew: (owner, ids, leaseMs, now = Date.now()) =>
      ids.length === 0 ? Promise.resolve() : write(() => void renew.run({ owner, expires: now + leaseMs, ids: JSON.stringify(ids) }), true),

    nextDueAt: () => read(() => (nextClaimable.get() as number | null) ?? null),

    get: (id) => read(() => db.select().from(outbox).where(eq(outbox.id, id)).get()),

    getByEventId: (eventId) => read(() => db.select().from(outbox).where(eq(outbox.eventId, eventId)).get()),

    list: (filter, page) =>
      read(() => {
        const { where, orderBy } = outboxList(outbox, filter, page);
        return db
          .select()
          .from(outbox)
          .where(where)
          .orderBy(...orderBy)
          .limit(page.limit)
          .all();
      }),

    count: (status) => read(() => db.select({ n: sql<number>`count(*)` }).from(outbox).where(eq(outbox.status, status)).get()?.n ?? 0),

    summary: () =>
      read(() => {
        const row = summary.get() as { pending: number; published: number; failed: number; oldestPendingAt: number | null };
        return {
          counts: { PENDING: row.pending, PUBLISHED: row.published, FAILED: row.failed },
          oldestPendingAt: row.oldestPendingAt === null ? null : new Date(row.oldestPendingAt),
        };
      }),

    retry: (id, now = Date.now()) =>
      write(() =>
        db
          .update(outbox)
          .set({ status: 'PENDING', nextAttemptAt: new Date(now), claimedBy: null, claimExpiresAt: null })
          .where(and(eq(outbox.id, id), eq(outbox.status, 'FAILED')))
          .returning()
          .get(),
      ).then((row) => {
        if (row) hooks.onAppend?.();
        return row;
      }),

    prunePublished: (before, batchSize) =>
      write(
        () =>
          db
            .delete(outbox)
            .where(
              inArray(
                outbox.id,
                db
                  .select({ id: outbox.id })
                  .from(outbox)
                  .where(and(eq(outbox.status, 'PUBLISHED'), lte(outbox.publishedAt, new Date(before))))
                  .orderBy(asc(outbox.publishedAt))
                  .limit(batchSize),
              ),
            )
            .run().changes,
      ),
  };
}
