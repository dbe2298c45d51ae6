import type { PartitionProgress } from './offset-tracker.js';

/** setTimeout's limit (about 24.8 days); a later not-before is released at that point. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Held {
  readonly progress: PartitionProgress;
  readonly timer: NodeJS.Timeout;
}

/**
 * Retry-topic messages that arrived before they are due, each on its own timer. A message due in
 * 1 s behind one due in 30 s is released after 1 s: nothing waits in line. The messages stay
 * unsettled (and uncommitted) while held, so a crash or close brings them back from Kafka.
 */
export class DelayedDeliveries {
  private readonly held = new Set<Held>();

  get size(): number {
    return this.held.size;
  }

  /** Calls `release` after `delayMs`, unless the message is dropped first. */
  hold(progress: PartitionProgress, delayMs: number, release: () => void): void {
    const entry: Held = {
      progress,
      timer: setTimeout(
        () => {
          this.held.delete(entry);
          release();
        },
        Math.min(delayMs, MAX_TIMER_MS),
      ),
    };
    this.held.add(entry);
  }

  /** Drops what was held for partitions this member no longer owns; the new owner gets them. */
  dropFor(lost: readonly PartitionProgress[]): void {
    for (const entry of this.held) {
      if (lost.includes(entry.progress)) {
        clearTimeout(entry.timer);
        this.held.delete(entry);
      }
    }
  }

  /** Drops everything held (closing): Kafka delivers it again to whoever consumes next. */
  clear(): void {
    for (const entry of this.held) clearTimeout(entry.timer);
    this.held.clear();
  }
}
