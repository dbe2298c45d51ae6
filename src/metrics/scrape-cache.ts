import { within } from '../util/retrying.js';

export interface ScrapeCacheOptions {
  /**
   * A reading is reused for at least this long.
   * @default 2000
   */
  readonly ttlMs?: number;
  /**
   * And for at least this many times what the reading took, so that counting a table that has
   * grown large costs the store a bounded share of its time (2% at the default).
   * @default 50
   */
  readonly costFactor?: number;
  /**
   * A scrape waits this long for a reading in progress, then answers without it (the reading
   * goes on, and the next scrape after it ended gets it).
   * @default 2000
   */
  readonly timeoutMs?: number;
  /**
   * A reading still in progress after this long is given up (a connection that hangs without an
   * error): the next scrape starts another, and the lost one's answer, if it ever comes, is dropped.
   * @default 10000
   */
  readonly abandonAfterMs?: number;
  /** Told of a reading that failed; the failure is cached like a value. */
  readonly onError: (error: unknown) => void;
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false };

/**
 * A value read from the store or the broker for `/metrics`, shared by the scrapes that come while
 * it is fresh: however many Prometheus servers scrape, and however often, one reading at a time is
 * in progress, and a store that hangs holds up no scrape longer than `timeoutMs`.
 */
export class ScrapeCache<T> {
  private last: Outcome<T> | undefined;
  private freshUntil = 0;
  private reading: Promise<void> | undefined;
  private readingSince = 0;
  /** Numbers the readings, so that one given up on cannot overwrite a newer one. */
  private generation = 0;
  private readonly ttlMs: number;
  private readonly costFactor: number;
  private readonly timeoutMs: number;
  private readonly abandonAfterMs: number;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly options: ScrapeCacheOptions,
  ) {
    this.ttlMs = options.ttlMs ?? 2000;
    this.costFactor = options.costFactor ?? 50;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.abandonAfterMs = options.abandonAfterMs ?? 10_000;
  }

  /** The fresh value, or undefined when the reading failed or did not end within the timeout. */
  async get(): Promise<T | undefined> {
    const now = Date.now();
    if (this.reading ? now - this.readingSince >= this.abandonAfterMs : now >= this.freshUntil) {
      this.readingSince = now;
      this.reading = this.refresh(++this.generation, now);
    }
    if (this.reading && !(await within(this.reading, this.timeoutMs))) return undefined;
    return this.last?.ok ? this.last.value : undefined;
  }

  private async refresh(generation: number, startedAt: number): Promise<void> {
    let outcome: Outcome<T>;
    try {
      // Never synchronously: `reading` must be set before this reading can end.
      outcome = { ok: true, value: await Promise.resolve().then(() => this.read()) };
    } catch (error) {
      outcome = { ok: false };
      this.options.onError(error);
    }
    if (generation !== this.generation) return; // given up on: a newer reading owns the cache
    const endedAt = Date.now();
    this.last = outcome;
    this.freshUntil = endedAt + Math.max(this.ttlMs, (endedAt - startedAt) * this.costFactor);
    this.reading = undefined;
  }
}
