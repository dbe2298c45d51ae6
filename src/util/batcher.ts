/** One job's outcome inside a batch: its own value or its own error. */
export type JobOutcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

export interface BatcherOptions {
  /**
   * Most jobs in one batch; more wait for the next.
   * @default 1024
   */
  readonly maxJobs?: number;
}

interface Waiting<J, R> {
  readonly job: J;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Runs concurrent calls together: jobs submitted in the same turn of the event loop, or while
 * the previous batch is still running, go into one batch. This is group commit when `run`
 * writes a transaction (one fsync for the group), and one round trip for many look-ups when it
 * reads. A job submitted while nothing runs waits only for the current turn of the event loop to
 * end (`setImmediate`), never for company.
 *
 * `run` answers every job in order, each with its own outcome; if it throws, every job of the
 * batch fails with that error. Batches never overlap.
 */
export class Batcher<J, R> {
  private queue: Waiting<J, R>[] = [];
  private scheduled = false;
  private running = false;
  private readonly maxJobs: number;
  /** Batches run and jobs answered so far (tests and metrics read them). */
  readonly stats = { batches: 0, jobs: 0 };

  constructor(
    private readonly run: (jobs: readonly J[]) => Promise<readonly JobOutcome<R>[]> | readonly JobOutcome<R>[],
    options: BatcherOptions = {},
  ) {
    this.maxJobs = options.maxJobs ?? 1024;
  }

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      if (!this.scheduled && !this.running) {
        this.scheduled = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.length <= this.maxJobs ? this.queue : this.queue.slice(0, this.maxJobs);
        this.queue = this.queue.length <= this.maxJobs ? [] : this.queue.slice(this.maxJobs);
        await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: readonly Waiting<J, R>[]): Promise<void> {
    let outcomes: readonly JobOutcome<R>[];
    try {
      outcomes = await this.run(batch.map((waiting) => waiting.job));
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
      return;
    }
    this.stats.batches++;
    this.stats.jobs += batch.length;
    batch.forEach((waiting, index) => {
      const outcome = outcomes[index];
      if (!outcome) waiting.reject(new Error(`batch answered ${outcomes.length} of ${batch.length} jobs`));
      else if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    });
  }
}
