import { and, asc, desc, eq, gt, inArray, lt, lte, sql, type SQL } from 'drizzle-orm';
import { decodeStoredEvent, encodeEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import { guard, type Store } from './database.js';
import { PRUNE_BATCH_SIZE } from './prune.js';
import { decodeNumericCursor, encodeCursor, type PageRequest } from './pagination.js';
import { outbox, type OutboxStatus } from './tables.js';

export type OutboxRow = typeof outbox.$inferSelect;

/** What the relay needs of a claimed row: fewer columns read is a faster claim. */
export type ClaimedRow = Pick<OutboxRow, 'id' | 'eventId' | 'key' | 'attempts' | 'body'>;

export interface AppendResult {
  readonly row: OutboxRow;
  /** True when an event with this id was already in the outbox; nothing was written for it. */
  readonly duplicate: boolean;
}

/** How one claimed row fared at the broker. */
export type PublishResult =
  | { readonly id: number; readonly ok: true }
  | { readonly id: number; readonly ok: false; readonly error: string; readonly retryAt: number | null };

export interface ClaimOptions {
  /** Who claims: one id per relay instance. */
  readonly owner: string;
  readonly limit: number;
  /** How long the claim holds if the relay dies before settling the rows. */
  readonly leaseMs: number;
  readonly now?: number;
}

export interface OutboxRepository {
  /**
   * Writes events in one transaction: all of them or none. An event whose id is already in the
   * outbox writes nothing and comes back as a duplicate with the stored row.
   */
  append(events: readonly GatewayEvent[]): AppendResult[];
  /**
   * Claims up to `limit` PENDING rows that are due, oldest first, for one relay. A row is skipped,
   * and so are all later rows with its key, while it is claimed by a relay or waiting out a
   * backoff: per-key order holds across retries and between relays.
   */
  claim(options: ClaimOptions): ClaimedRow[];
  /**
   * Settles claimed rows: published ones become PUBLISHED; failed ones stay PENDING (or become
   * FAILED when `retryAt` is null) with attempts and the error.
   */
  settle(owner: string, results: readonly PublishResult[], now?: number): void;
  /** Gives claimed rows back without counting an attempt. */
  release(owner: string, ids: readonly number[]): void;
  /** Extends this relay's claim on rows it is still publishing, so no other relay takes them. */
  renew(owner: string, ids: readonly number[], leaseMs: number, now?: number): void;
  /**
   * Earliest time a claim could find a row, if any PENDING row exists: over the first PENDING
   * row of each key (later ones wait behind it) and every row without a key, the moment it is
   * both due and unclaimed.
   */
  nextDueAt(): number | null;
  get(id: number): OutboxRow | undefined;
  getByEventId(eventId: string): OutboxRow | undefined;
  list(filter: { status?: OutboxStatus | undefined }, page: PageRequest): OutboxRow[];
  count(status: OutboxStatus): number;
  /** Puts a FAILED row back to PENDING, due now. Returns the row, or undefined if it is not FAILED. */
  retry(id: number, now?: number): OutboxRow | undefined;
  /**
   * Deletes up to `batchSize` PUBLISHED rows published before `before`, oldest first, and returns
   * how many. Never touches PENDING or FAILED rows.
   */
  prunePublished(before: number, batchSize?: number): number;
}

export const outboxCursor = (row: OutboxRow) => encodeCursor('outbox', row.id);

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
const READ_CLAIMED_SQL = `select id, event_id as eventId, key, attempts, body from outbox where id in (select value from json_each(@ids)) order by id`;

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

export function createOutboxRepository(store: Store, hooks: { onAppend?: () => void } = {}): OutboxRepository {
  const { db } = store;
  const claimable = store.sqlite.prepare<{ now: number; limit: number }>(CLAIMABLE_SQL).pluck();
  const markClaimed = store.sqlite.prepare<{ owner: string; expires: number; ids: string }>(MARK_CLAIMED_SQL);
  const readClaimed = store.sqlite.prepare<{ ids: string }>(READ_CLAIMED_SQL);
  const publishedStatement = store.sqlite.prepare<{ now: number; ids: string }>(PUBLISHED_SQL);
  const failedStatement = store.sqlite.prepare<{ id: number; owner: string; status: OutboxStatus; error: string; retryAt: number }>(FAILED_SQL);
  const nextClaimable = store.sqlite.prepare(NEXT_CLAIMABLE_SQL).pluck();

  return {
    append(events) {
      const now = new Date();
      const results = store.transaction(() =>
        events.map((event): AppendResult => {
          const inserted = db
            .insert(outbox)
            .values({
              eventId: event.id,
              topic: event.topic,
              type: event.type,
              key: event.key,
              body: encodeEvent(event).toString('utf8'),
              createdAt: now,
              nextAttemptAt: now,
            })
            .onConflictDoNothing({ target: outbox.eventId })
            .returning()
            .get();
          if (inserted) return { row: inserted, duplicate: false };
          const existing = db.select().from(outbox).where(eq(outbox.eventId, event.id)).get();
          if (!existing) throw new Error(`outbox conflict on event ${event.id} but no row found`);
          return { row: existing, duplicate: true };
        }),
      );
      if (results.some((r) => !r.duplicate)) hooks.onAppend?.();
      return results;
    },

    claim({ owner, limit, leaseMs, now = Date.now() }) {
      return store.transaction(
        () => {
          const ids = claimable.all({ now, limit }) as number[];
          if (ids.length === 0) return [];
          const json = JSON.stringify(ids);
          markClaimed.run({ owner, expires: now + leaseMs, ids: json });
          return readClaimed.all({ ids: json }) as ClaimedRow[];
        },
        { relaxed: true },
      );
    },

    settle(owner, results, now = Date.now()) {
      if (results.length === 0) return;
      const published = results.filter((r) => r.ok).map((r) => r.id);
      store.transaction(() => {
        if (published.length > 0) publishedStatement.run({ now, ids: JSON.stringify(published) });
        for (const result of results) {
          if (result.ok) continue;
          failedStatement.run({
            id: result.id,
            owner,
            status: result.retryAt === null ? 'FAILED' : 'PENDING',
            error: result.error.slice(0, 2000),
            retryAt: result.retryAt ?? now,
          });
        }
      }, { relaxed: true });
    },

    release(owner, ids) {
      if (ids.length === 0) return;
      store.transaction(
        () =>
          db.update(outbox)
            .set({ claimedBy: null, claimExpiresAt: null })
            .where(and(inArray(outbox.id, [...ids]), eq(outbox.claimedBy, owner), eq(outbox.status, 'PENDING')))
            .run(),
        { relaxed: true },
      );
    },

    renew(owner, ids, leaseMs, now = Date.now()) {
      if (ids.length === 0) return;
      store.transaction(
        () =>
          db.update(outbox)
            .set({ claimExpiresAt: new Date(now + leaseMs) })
            .where(and(inArray(outbox.id, [...ids]), eq(outbox.claimedBy, owner), eq(outbox.status, 'PENDING')))
            .run(),
        { relaxed: true },
      );
    },

    nextDueAt() {
      const at = guard('read the outbox', () => nextClaimable.get() as number | null);
      return at ?? null;
    },

    get(id) {
      return guard('read the outbox', () => db.select().from(outbox).where(eq(outbox.id, id)).get());
    },

    getByEventId(eventId) {
      return guard('read the outbox', () => db.select().from(outbox).where(eq(outbox.eventId, eventId)).get());
    },

    list(filter, page) {
      const after = decodeNumericCursor('outbox', page.after);
      const before = decodeNumericCursor('outbox', page.before);
      const where: SQL[] = [];
      if (filter.status) where.push(eq(outbox.status, filter.status));
      if (after !== undefined) where.push(gt(outbox.id, after));
      if (before !== undefined) where.push(lt(outbox.id, before));
      return guard('read the outbox', () =>
        db
          .select()
          .from(outbox)
          .where(and(...where))
          .orderBy(page.inverted ? desc(outbox.id) : asc(outbox.id))
          .limit(page.limit)
          .all(),
      );
    },

    count(status) {
      const row = guard('read the outbox', () =>
        db.select({ n: sql<number>`count(*)` }).from(outbox).where(eq(outbox.status, status)).get(),
      );
      return row?.n ?? 0;
    },

    retry(id, now = Date.now()) {
      const row = store.transaction(() =>
        db
          .update(outbox)
          .set({ status: 'PENDING', nextAttemptAt: new Date(now), claimedBy: null, claimExpiresAt: null })
          .where(and(eq(outbox.id, id), eq(outbox.status, 'FAILED')))
          .returning()
          .get(),
      );
      if (row) hooks.onAppend?.();
      return row;
    },

    prunePublished(before, batchSize = PRUNE_BATCH_SIZE) {
      const result = store.transaction(() =>
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
          .run(),
      );
      return result.changes;
    },
  };
}

/** The event an outbox row holds; its stored body is reused as the wire body. */
export function outboxRowToEvent(row: Pick<OutboxRow, 'body'>): GatewayEvent {
  return decodeStoredEvent(row.body);
}
