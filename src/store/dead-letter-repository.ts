import { decodeStoredEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import { encodeCursor, type PageRequest } from './pagination.js';

export const DEAD_LETTER_STATUSES = ['DEAD', 'REPLAYED', 'DISCARDED'] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

/** Events a consumer gave up on after its last attempt, one row per consumer and event. */
export interface DeadLetterRow {
  readonly id: number;
  readonly consumer: string;
  readonly topic: string;
  readonly eventId: string;
  /** The structured CloudEvent JSON. */
  readonly event: string;
  readonly error: string;
  readonly attempts: number;
  readonly status: DeadLetterStatus;
  readonly firstFailedAt: Date;
  readonly lastFailedAt: Date;
  readonly updatedAt: Date;
}

export interface DeadLetterInput {
  readonly consumer: string;
  readonly event: GatewayEvent;
  readonly error: string;
  /** Handler attempts in the run that ended in this dead letter. */
  readonly attempts: number;
}

export interface DeadLetterFilter {
  readonly consumer?: string | undefined;
  readonly topic?: string | undefined;
  readonly status?: DeadLetterStatus | undefined;
}

/**
 * The dead-letter table. Methods may be called concurrently; writes resolve once committed and
 * reject with `StoreUnavailableError` when the store cannot take them now.
 */
export interface DeadLetterRepository {
  /**
   * Records that `consumer` gave up on `event`. One row per consumer and event: a letter that was
   * replayed and failed again goes back to DEAD with its attempts added up; a redelivered
   * duplicate of a letter that is already DEAD only refreshes it.
   */
  record(input: DeadLetterInput, now?: number): Promise<DeadLetterRow>;
  get(id: number): Promise<DeadLetterRow | undefined>;
  list(filter: DeadLetterFilter, page: PageRequest): Promise<DeadLetterRow[]>;
  countByConsumer(status: DeadLetterStatus): Promise<Map<string, number>>;
  /** Moves a letter from one status to another; undefined when it was not in `from`. */
  transition(id: number, from: DeadLetterStatus, to: DeadLetterStatus, now?: number): Promise<DeadLetterRow | undefined>;
}

/** Newest first: the list an operator looks at is "what broke lately". */
export const deadLetterCursor = (row: DeadLetterRow) => encodeCursor('dead-letter', row.id);

/** The stored event, as the gateway encoded it when it recorded the letter. */
export function deadLetterEvent(row: Pick<DeadLetterRow, 'event'>): GatewayEvent {
  return decodeStoredEvent(row.event);
}

/** Attempts a letter carries after another failure of the same event. */
export function attemptsAfterFailure(existing: Pick<DeadLetterRow, 'status' | 'attempts'>, attempts: number): number {
  // A replay starts counting again; a duplicate delivery of a DEAD letter must not inflate it.
  return existing.status === 'REPLAYED' ? existing.attempts + attempts : Math.max(existing.attempts, attempts);
}

/** An operator's discard stands even if the broker hands the message over once more. */
export function statusAfterFailure(existing: Pick<DeadLetterRow, 'status'>): DeadLetterStatus {
  return existing.status === 'DISCARDED' ? 'DISCARDED' : 'DEAD';
}
