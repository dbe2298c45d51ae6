import { and, asc, desc, eq, gt, inArray, lt, lte, min, sql, type SQL } from 'drizzle-orm';
import type { GatewayEvent } from '../events/event.js';
import { guard, type Store } from './database.js';
import { decodeNumericCursor, encodeCursor, type PageRequest } from './pagination.js';
import { outbox, type OutboxStatus } from './tables.js';

export type OutboxRow = typeof outbox.$inferSelect;

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
  claim(options: ClaimOptions): OutboxRow[];
  /** Settles claimed rows: published ones become PUBLISHED; failed ones stay PENDING (or become FAILED when `retryAt` is null) with attempts and the error. */
  settle(owner: string, results: readonly PublishResult[], now?: number): void;
  /** Gives claimed rows back without counting an attempt (used when a relay stops). */
  release(owner: string, ids: readonly number[]): void;
  /** Earliest time a currently unclaimed PENDING row becomes due, if any. */
  nextDueAt(): number | null;
  get(id: number): OutboxRow | undefined;
  getByEventId(eventId: string): OutboxRow | undefined;
  list(filter: { status?: OutboxStatus | undefined }, page: PageRequest): OutboxRow[];
  count(status: OutboxStatus): number;
  /** Puts a FAILED row back to PENDING, due now. Returns the row, or undefined if it is not FAILED. */
  retry(id: number, now?: number): OutboxRow | undefined;
  /** Deletes PUBLISHED rows published before `before`. Never touches PENDING or FAILED rows. */
  prunePublished(before: number, batchSize?: number): number;
}

export const outboxCursor = (row: OutboxRow) => encodeCursor('outbox', row.id);

/** How far past the first PENDING row a claim looks for due rows. */
const CLAIM_WINDOW_FACTOR = 4;

export function createOutboxRepository(store: Store, hooks: { onAppend?: () => void } = {}): OutboxRepository {
  const { db } = store;

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
              source: event.source,
              subject: event.subject,
              key: event.key,
              time: event.time,
              dataContentType: event.dataContentType,
              data: JSON.stringify(event.data),
              correlationId: event.correlationId,
              causationId: event.causationId,
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
      return store.transaction(() => {
        const candidates = db
          .select()
          .from(outbox)
          .where(eq(outbox.status, 'PENDING'))
          .orderBy(asc(outbox.id))
          .limit(Math.max(limit * CLAIM_WINDOW_FACTOR, 1000))
          .all();
        const blockedKeys = new Set<string>();
        const picked: OutboxRow[] = [];
        for (const row of candidates) {
          if (row.key !== null && blockedKeys.has(row.key)) continue;
          const claimed = row.claimExpiresAt !== null && row.claimExpiresAt.getTime() > now;
          const waiting = row.nextAttemptAt.getTime() > now;
          if (claimed || waiting) {
            if (row.key !== null) blockedKeys.add(row.key);
            continue;
          }
          picked.push(row);
          if (picked.length >= limit) break;
        }
        if (picked.length === 0) return picked;
        const expires = new Date(now + leaseMs);
        db.update(outbox)
          .set({ claimedBy: owner, claimExpiresAt: expires })
          .where(inArray(outbox.id, picked.map((r) => r.id)))
          .run();
        return picked.map((r) => ({ ...r, claimedBy: owner, claimExpiresAt: expires }));
      });
    },

    settle(owner, results, now = Date.now()) {
      if (results.length === 0) return;
      const published = results.filter((r) => r.ok).map((r) => r.id);
      store.transaction(() => {
        if (published.length > 0) {
          db.update(outbox)
            .set({ status: 'PUBLISHED', publishedAt: new Date(now), claimedBy: null, claimExpiresAt: null })
            .where(and(inArray(outbox.id, published), eq(outbox.status, 'PENDING')))
            .run();
        }
        for (const result of results) {
          if (result.ok) continue;
          db.update(outbox)
            .set({
              status: result.retryAt === null ? 'FAILED' : 'PENDING',
              attempts: sql`${outbox.attempts} + 1`,
              lastError: result.error.slice(0, 2000),
              nextAttemptAt: new Date(result.retryAt ?? now),
              claimedBy: null,
              claimExpiresAt: null,
            })
            // A row another relay took over after our lease ran out is that relay's to settle.
            .where(and(eq(outbox.id, result.id), eq(outbox.status, 'PENDING'), eq(outbox.claimedBy, owner)))
            .run();
        }
      });
    },

    release(owner, ids) {
      if (ids.length === 0) return;
      store.transaction(() =>
        db.update(outbox)
          .set({ claimedBy: null, claimExpiresAt: null })
          .where(and(inArray(outbox.id, [...ids]), eq(outbox.claimedBy, owner), eq(outbox.status, 'PENDING')))
          .run(),
      );
    },

    nextDueAt() {
      const row = guard('read the outbox', () =>
        db
          .select({ at: min(outbox.nextAttemptAt) })
          .from(outbox)
          .where(and(eq(outbox.status, 'PENDING'), sql`${outbox.claimedBy} is null`))
          .get(),
      );
      return row?.at ? row.at.getTime() : null;
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

    prunePublished(before, batchSize = 5000) {
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
                .limit(batchSize),
            ),
          )
          .run(),
      );
      return result.changes;
    },
  };
}

/** The event an outbox row holds. */
export function outboxRowToEvent(row: OutboxRow): GatewayEvent {
  return {
    id: row.eventId,
    source: row.source,
    type: row.type,
    topic: row.topic,
    subject: row.subject,
    time: row.time,
    dataContentType: row.dataContentType,
    data: JSON.parse(row.data) as unknown,
    key: row.key,
    correlationId: row.correlationId,
    causationId: row.causationId,
  };
}
