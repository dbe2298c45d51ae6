import { InvalidInputError } from '../errors.js';
import { Batcher, type JobOutcome } from '../util/batcher.js';
import { decodeCursor, encodeCursor, type PageRequest } from './pagination.js';

/** Idempotent consumer: an event a consumer handled successfully. */
export interface ProcessedMessageRow {
  readonly consumer: string;
  readonly eventId: string;
  readonly processedAt: Date;
}

/**
 * The processed-message table. Methods may be called concurrently; concurrent `has` and `record`
 * calls are answered by shared queries and commits, so a consumer with many deliveries in flight
 * pays for one round trip per batch, not per delivery.
 */
export interface ProcessedMessageRepository {
  has(consumer: string, eventId: string): Promise<boolean>;
  /**
   * Records a success. Returns false when the event was already recorded for this consumer.
   * Committed without waiting for the disk: an OS crash may forget the newest records, and a
   * redelivery of those events then runs the handler again, as at-least-once delivery allows.
   */
  record(consumer: string, eventId: string, now?: number): Promise<boolean>;
  get(consumer: string, eventId: string): Promise<ProcessedMessageRow | undefined>;
  /** Newest first. */
  list(consumer: string, page: PageRequest): Promise<ProcessedMessageRow[]>;
  countByConsumer(): Promise<Map<string, number>>;
  /**
   * Forgets up to `batchSize` successes older than `before` and returns how many; a redelivery
   * of such an event is handled again.
   */
  prune(before: number, batchSize: number): Promise<number>;
}

/** One success to record. */
export interface ProcessedRecord {
  readonly consumer: string;
  readonly eventId: string;
  readonly at: number;
}

/** The key of a (consumer, event) pair in sets and maps. */
export const processedKey = (consumer: string, eventId: string) => `${consumer}\u0000${eventId}`;

/**
 * `has` and `record` as both stores implement them around their own queries: the successes of
 * concurrent deliveries share one `commit` (it answers, per record, whether it was new), which
 * may linger a millisecond for more, since nobody waits on it but the broker's ack; and until that
 * commit is done, `has` answers true for what was submitted without asking `lookup`.
 */
export function batchedRecords(
  commit: (records: readonly ProcessedRecord[]) => Promise<readonly JobOutcome<boolean>[]> | readonly JobOutcome<boolean>[],
  lookup: (consumer: string, eventId: string) => Promise<boolean>,
): Pick<ProcessedMessageRepository, 'has' | 'record'> {
  /** Records submitted and not committed yet: already "processed" for `has`. */
  const pending = new Set<string>();
  const records = new Batcher<ProcessedRecord, boolean>(
    async (batch) => {
      try {
        return await commit(batch);
      } finally {
        for (const record of batch) pending.delete(processedKey(record.consumer, record.eventId));
      }
    },
    { lingerMs: 1, maxJobs: 256 },
  );
  return {
    has: (consumer, eventId) => (pending.has(processedKey(consumer, eventId)) ? Promise.resolve(true) : lookup(consumer, eventId)),
    record: (consumer, eventId, now = Date.now()) => {
      pending.add(processedKey(consumer, eventId));
      return records.submit({ consumer, eventId, at: now });
    },
  };
}

export const processedMessageCursor = (row: ProcessedMessageRow) => encodeCursor('processed', `${row.processedAt.getTime()}:${row.eventId}`);

/** The position a processed-message cursor names: (processedAt, eventId), newest first. */
export function parseProcessedCursor(cursor: string | undefined): { at: number; eventId: string } | undefined {
  const value = decodeCursor('processed', cursor);
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  const at = Number(value.slice(0, colon));
  if (colon < 0 || !Number.isSafeInteger(at)) throw new InvalidInputError(`invalid cursor "${cursor}"`);
  return { at, eventId: value.slice(colon + 1) };
}
