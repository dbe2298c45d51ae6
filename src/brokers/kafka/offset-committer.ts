import type { Logger } from '../../util/logger.js';
import type { OffsetToCommit, OffsetTracker } from './offset-tracker.js';

/** Pause before trying again after a failed commit. */
const RETRY_MS = 1000;
/**
 * Least time between two commits. A busy consumer settles thousands of records a second; a commit
 * each time would cost a Kafka round trip each. What settles meanwhile goes into the next commit,
 * and a crash in between only redelivers records the idempotent consumer then skips.
 */
const MIN_INTERVAL_MS = 50;

/**
 * Commits what an `OffsetTracker` made committable, soon after settlements, without piling up
 * requests: one commit at a time, at most one per `MIN_INTERVAL_MS`, and whatever settled meanwhile
 * goes into the next one. A failed commit (a rebalance, an outage) is retried; until it lands, a
 * crash only redelivers.
 */
export class OffsetCommitter {
  private running: Promise<void> | undefined;
  private wanted = false;
  private failing = false;
  private lastCommitAt = 0;

  constructor(
    private readonly tracker: OffsetTracker,
    private readonly commit: (offsets: OffsetToCommit[]) => Promise<void>,
    private readonly logger: Logger,
    /** Once aborted, failures are no longer retried in the background; `flush` still commits. */
    private readonly closing: AbortSignal,
  ) {}

  /** Commits soon; never waits. */
  schedule(): void {
    this.wanted = true;
    this.running ??= this.commitWanted().finally(() => (this.running = undefined));
  }

  /** Commits everything committable now and waits for it (closing). */
  async flush(): Promise<void> {
    await this.running;
    this.wanted = true;
    await this.commitWanted();
  }

  private async commitWanted(): Promise<void> {
    while (this.wanted) {
      const wait = this.lastCommitAt + MIN_INTERVAL_MS - Date.now();
      if (wait > 0 && !this.closing.aborted) await new Promise((resolve) => setTimeout(resolve, wait));
      this.wanted = false;
      this.lastCommitAt = Date.now();
      const offsets = this.tracker.uncommitted();
      if (offsets.length === 0) continue;
      try {
        await this.commit(offsets);
        this.tracker.markCommitted(offsets);
        this.failing = false;
      } catch (error) {
        if (!this.failing) this.logger.warn({ err: error, offsets }, 'could not commit kafka offsets; retrying');
        this.failing = true;
        if (!this.closing.aborted) {
          setTimeout(() => {
            if (!this.closing.aborted) this.schedule();
          }, RETRY_MS).unref();
        }
        return;
      }
    }
  }
}
