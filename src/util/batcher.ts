/** One job's outcome inside a batch: its own value or its own error. */
export type JobOutcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

export interface BatcherOptions {
  /**
   * Most jobs in one batch; more wait for the next.
   * @default 1024
   */
  readonly maxJobs?: number;
  /**
   * How long the first job of a batch may wait for company, for callers that do not wait on the
   * answer's latency (bookkeeping): more jobs per batch, fewer commits. A batch of `maxJobs` goes
   * at once. 0 waits only for the current turn of the event loop.
   * @default 0
   */
  readonly lingerMs?: number;
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
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private running = false;
  private readonly maxJobs: number;
  private readonly lingerMs: number;
  /** Batches run and jobs answered so far (tests and metrics read them). */
  readonly stats = { batches: 0, jobs: 0 };

  constructor(
    private readonly run: (jobs: readonly J[]) => Promise<readonly JobOutcome<R>[]> | readonly JobOutcome<R>[],
    options: BatcherOptions = {},
  ) {
    this.maxJobs = options.maxJobs ?? 1024;
    this.lingerMs = options.lingerMs ?? 0;
  }

  submit(job: J): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      if (this.running) return;
      if (this.scheduled && this.lingerMs > 0 && this.queue.length >= this.maxJobs) {
        // A full batch does not linger.
        clearTimeout(this.scheduled as NodeJS.Timeout);
        this.scheduled = undefined;
      }
      this.scheduled ??=
        this.lingerMs > 0 && this.queue.length < this.maxJobs ? setTimeout(() => void this.drain(), this.lingerMs) : setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    this.scheduled = undefined;
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
