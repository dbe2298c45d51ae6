import { decodeStoredEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import { encodeCursor, type PageRequest } from './pagination.js';

export const OUTBOX_STATUSES = ['PENDING', 'PUBLISHED', 'FAILED'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/** One outbox row as every dialect returns it. */
export interface OutboxRow {
  /** Commit order within one process; the relay publishes oldest first. */
  readonly id: number;
  readonly eventId: string;
  readonly topic: string;
  readonly type: string;
  readonly key: string | null;
  /** The event exactly as it goes on the wire (structured CloudEvent JSON). */
  readonly body: string;
  readonly status: OutboxStatus;
  /** Failed publish attempts so far. */
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly publishedAt: Date | null;
  readonly nextAttemptAt: Date;
  readonly claimedBy: string | null;
  readonly claimExpiresAt: Date | null;
}

/**
 * What the relay needs of a claimed row: fewer columns read is a faster claim. A row handed over
 * by `append` also carries the event it was written from, so it is not decoded again.
 * `createdAt` is when the row was written (its commit's start): the relay measures the time from
 * it to the broker's confirm.
 */
export type ClaimedRow = Pick<OutboxRow, 'id' | 'eventId' | 'key' | 'attempts' | 'body' | 'createdAt'> & { readonly event?: GatewayEvent };

/** The outbox at a glance, for `/metrics`. */
export interface OutboxSummary {
  readonly counts: Readonly<Record<OutboxStatus, number>>;
  /** When the first PENDING row in commit order was written; null when none is pending. */
  readonly oldestPendingAt: Date | null;
}

/**
 * The relay of this process, taking rows straight from `append` (see `OutboxRepository.handOffTo`).
 */
export interface OutboxTaker {
  /** The claim owner the handed rows are written with. */
  readonly owner: string;
  readonly leaseMs: number;
  /** How many rows it takes now; 0 leaves new rows unclaimed in the table for any relay. */
  capacity(): number;
  /** Rows of one commit, claimed for it, in commit order. Called once the commit is durable. */
  take(rows: readonly ClaimedRow[]): void;
}

export interface AppendResult {
  readonly id: number;
  /** True when an event with this id was already in the outbox; nothing was written for it. */
  readonly duplicate: boolean;
  /** The event as stored: the one given, or for a duplicate the one written first. */
  readonly event: GatewayEvent;
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

/**
 * The outbox table. Every method may be called concurrently; each resolves once its work is
 * committed and rejects with `StoreUnavailableError` when the store cannot take it now (nothing
 * of that call is then written).
 */
export interface OutboxRepository {
  /**
   * Writes events in one transaction: all of them or none. An event whose id is already in the
   * outbox writes nothing and comes back as a duplicate with the stored event. Calls that arrive
   * while a commit is being made share the next commit (group commit: one fsync for all), yet
   * each stays all-or-nothing on its own: a call that fails (a constraint) fails alone, while a
   * store that cannot write fails every call of the group. Resolves once the commit is durable.
   */
  append(events: readonly GatewayEvent[]): Promise<AppendResult[]>;
  /**
   * Hands rows `append` writes to this process's relay, claimed for it in the same transaction,
   * so that a steady stream of single events costs no claim of its own. Only rows the relay
   * could claim anyway are handed: up to its capacity, and never a row whose key has an earlier
   * PENDING row (that one may still be unconfirmed, so per-key order leaves it to the claim).
   * `undefined` stops the hand-off.
   */
  handOffTo(taker: OutboxTaker | undefined): void;
  /**
   * Claims up to `limit` PENDING rows that are due, oldest first, for one relay. A row is skipped,
   * and so are all later rows with its key, while it is claimed by a relay or waiting out a
   * backoff: per-key order holds across retries and between relays.
   */
  claim(options: ClaimOptions): Promise<ClaimedRow[]>;
  /**
   * Settles claimed rows: published ones become PUBLISHED; failed ones stay PENDING (or become
   * FAILED when `retryAt` is null) with attempts and the error. Rows another relay took over
   * after this relay's lease ran out are left to that relay.
   */
  settle(owner: string, results: readonly PublishResult[], now?: number): Promise<void>;
  /** Gives claimed rows back without counting an attempt. */
  release(owner: string, ids: readonly number[]): Promise<void>;
  /** Extends this relay's claim on rows it is still publishing, so no other relay takes them. */
  renew(owner: string, ids: readonly number[], leaseMs: number, now?: number): Promise<void>;
  /**
   * Earliest time a claim could find a row, if any PENDING row exists: over the first PENDING
   * row of each key (later ones wait behind it) and every row without a key, the moment it is
   * both due and unclaimed.
   */
  nextDueAt(): Promise<number | null>;
  get(id: number): Promise<OutboxRow | undefined>;
  getByEventId(eventId: string): Promise<OutboxRow | undefined>;
  list(filter: { status?: OutboxStatus | undefined }, page: PageRequest): Promise<OutboxRow[]>;
  count(status: OutboxStatus): Promise<number>;
  /**
   * Rows per status and the oldest PENDING row, read in one statement (one snapshot). PENDING rows
   * are counted from their index; PUBLISHED and FAILED ones cost a walk over an index of every
   * row, so this grows with the retention (`/metrics` caches it accordingly).
   */
  summary(): Promise<OutboxSummary>;
  /** Puts a FAILED row back to PENDING, due now. Returns the row, or undefined if it is not FAILED. */
  retry(id: number, now?: number): Promise<OutboxRow | undefined>;
  /**
   * Deletes up to `batchSize` PUBLISHED rows published before `before`, oldest first, and returns
   * how many. Never touches PENDING or FAILED rows.
   */
  prunePublished(before: number, batchSize: number): Promise<number>;
}

export const outboxCursor = (row: OutboxRow) => encodeCursor('outbox', row.id);

/** The event an outbox row holds; its stored body is reused as the wire body. */
export function outboxRowToEvent(row: Pick<OutboxRow, 'body'>): GatewayEvent {
  return decodeStoredEvent(row.body);
}
