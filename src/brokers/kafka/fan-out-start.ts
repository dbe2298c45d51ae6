import { CursorExpiredError, InvalidCursorError } from '../../errors.js';
import type { LogPoint } from '../broker.js';

/** One partition's watermarks as `admin.fetchTopicOffsets` reports them (offsets as strings). */
export interface PartitionBounds {
  readonly partition: number;
  /** Offset of the oldest record Kafka still keeps (retention and `deleteRecords` raise it). */
  readonly low: string;
  /** Offset the next record will get: one past the newest. */
  readonly high: string;
}

/** Where a fan-out subscription starts reading, and the point it reports as `Subscription.start`. */
export interface FanOutStart {
  /** Per partition, the offset of the first record to deliver. */
  readonly next: ReadonlyMap<number, number>;
  /** Per partition, the offset of the last record before `next`: `next - 1`. */
  readonly start: LogPoint;
}

function startAt(next: ReadonlyMap<number, number>): FanOutStart {
  return { next, start: Object.fromEntries([...next].map(([partition, offset]) => [String(partition), offset - 1])) };
}

/** A subscription from now: every partition starts at its high watermark, after the last record. */
export function startFromEnd(bounds: readonly PartitionBounds[]): FanOutStart {
  return startAt(new Map(bounds.map(({ partition, high }) => [partition, Number(high)])));
}

/**
 * A subscription resuming after `point` (whose log was already checked to be this topic): each
 * partition it names starts just after its offset there, every other one at its low watermark.
 *
 * The bounds are checked here because kafkajs, asked to fetch from an offset Kafka no longer has
 * or does not have yet, silently moves to the latest offset instead: a gap the subscriber would
 * never see. Throws `CursorExpiredError` when records after the point were deleted (retention,
 * `deleteRecords`), `InvalidCursorError` when the point is past the end of a partition or names
 * a partition the topic does not have.
 */
export function startAfter(bounds: readonly PartitionBounds[], point: LogPoint): FanOutStart {
  const byPartition = new Map(bounds.map((b) => [String(b.partition), b]));
  for (const [partition, offset] of Object.entries(point)) {
    if (!byPartition.has(partition)) {
      throw new InvalidCursorError(`cursor names partition "${partition}", which the Kafka topic does not have (it has ${bounds.length})`);
    }
    // -1 is the point before the first record of a partition that never had one.
    if (!Number.isSafeInteger(offset) || offset < -1) throw new InvalidCursorError(`cursor offset ${offset} on partition ${partition} is not a Kafka offset`);
  }
  const next = new Map<number, number>();
  for (const { partition, low, high } of bounds) {
    const named = point[String(partition)];
    const from = named === undefined ? Number(low) : named + 1;
    if (from < Number(low)) {
      throw new CursorExpiredError(
        `the events after this cursor are no longer kept: Kafka deleted partition ${partition} up to offset ${low}, the cursor resumes at ${from}`,
      );
    }
    if (from > Number(high)) {
      throw new InvalidCursorError(`cursor is past the end of partition ${partition}: it resumes at offset ${from}, the partition ends at ${high}`);
    }
    next.set(partition, from);
  }
  return startAt(next);
}
