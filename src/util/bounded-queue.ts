export interface BoundedQueueOptions<T> {
  /** Values waiting for the reader before the queue overflows (0: none may wait). */
  readonly items: number;
  /**
   * Bytes waiting, as `sizeOf` counts them, before the queue overflows.
   * @default Infinity
   */
  readonly bytes?: number;
  /**
   * The size of a value that has to wait. Only values that wait are measured: one handed straight
   * to a waiting reader costs nothing.
   * @default () => 0
   */
  readonly sizeOf?: (value: T) => number;
  /**
   * Past the bounds: `'refuse'` the value (the queue carries on); `'drop-oldest'` to make room;
   * or a function whose error the queue fails with, dropping what waits, so that the reader learns
   * at once that it fell behind instead of first reading events it can no longer use.
   * @default 'refuse'
   */
  readonly overflow?: 'refuse' | 'drop-oldest' | (() => Error);
  /**
   * Called once, when the queue stops taking values: on `end`, `fail`, an overflow that fails it,
   * or `close` / `return`, whichever comes first. The producer lets go of it here.
   */
  readonly onEnd?: () => void;
}

/** What `push` did: handed the value on or queued it; refused it (or failed the queue); or nothing, the queue has ended. */
export type PushResult = 'accepted' | 'overflow' | 'ended';

/**
 * Values pushed by a producer, pulled by one reader through async iteration, with a bound on what
 * may wait in between: the one way the gateway turns pushed events into an async iterator. A
 * reader waiting in `next()` gets a value at once, without it being measured or queued.
 *
 * The producer ends the queue with `end()` (what waits is still read, then the iterator is done)
 * or `fail(error)` (what waits is read, then `next()` rejects with the error, once, then it is
 * done). The reader ends it with `return()` (`for await` does so on `break`); the owner with
 * `close()`, which does the same: what waits is dropped and `next()` is done from then on. Every
 * method is synchronous towards the producer and safe in any state: after the end, `push`, `end`
 * and `fail` do nothing. One reader at a time: a second `next()` while one waits replaces it.
 */
export class BoundedQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  /** The size of each waiting value, beside it: no wrapper object per value. */
  private readonly sizes: number[] = [];
  private queuedBytes = 0;
  /** The reader waiting in `next()`. `fail` resolves it with a rejected promise: one function kept per wait, not two. */
  private waiting: ((result: IteratorResult<T> | Promise<never>) => void) | undefined;
  private error: Error | undefined;
  private stopped = false;
  private readonly maxItems: number;
  private readonly maxBytes: number;
  private readonly sizeOf: ((value: T) => number) | undefined;
  private readonly overflow: NonNullable<BoundedQueueOptions<T>['overflow']>;
  private readonly onEnd: (() => void) | undefined;

  constructor(options: BoundedQueueOptions<T>) {
    this.maxItems = options.items;
    this.maxBytes = options.bytes ?? Infinity;
    this.sizeOf = options.sizeOf;
    this.overflow = options.overflow ?? 'refuse';
    this.onEnd = options.onEnd;
  }

  /** True once the queue takes no more values (what waits may still be read). */
  get ended(): boolean {
    return this.stopped;
  }

  /** Hands `value` to the reader waiting, else queues it within the bounds (past them, see `overflow`). */
  push(value: T): PushResult {
    if (this.stopped) return 'ended';
    const resolve = this.waiting;
    if (resolve) {
      this.waiting = undefined;
      resolve({ value, done: false });
      return 'accepted';
    }
    const size = this.sizeOf ? this.sizeOf(value) : 0;
    if (this.values.length >= this.maxItems || this.queuedBytes + size > this.maxBytes) {
      const overflow = this.overflow;
      if (overflow === 'refuse') return 'overflow';
      if (overflow !== 'drop-oldest') {
        this.drop();
        this.fail(overflow());
        return 'overflow';
      }
      while (this.values.length > 0 && (this.values.length >= this.maxItems || this.queuedBytes + size > this.maxBytes)) this.shift();
      if (this.values.length >= this.maxItems || size > this.maxBytes) return 'overflow';
    }
    this.values.push(value);
    this.sizes.push(size);
    this.queuedBytes += size;
    return 'accepted';
  }

  /** Ends the queue with `error`, read after what waits; a reader waiting now gets it at once. */
  fail(error: Error): void {
    if (this.stopped) return;
    this.stop();
    const resolve = this.waiting;
    if (resolve) {
      this.waiting = undefined;
      resolve(Promise.reject(error));
    } else {
      this.error = error;
    }
  }

  /** Ends the queue cleanly: what waits is read, then the iterator is done. */
  end(): void {
    if (this.stopped) return;
    this.stop();
    this.wakeDone();
  }

  /** Ends the queue at once: what waits (values, an error) is dropped; a waiting reader is done. */
  close(): void {
    this.drop();
    this.error = undefined;
    if (!this.stopped) this.stop();
    this.wakeDone();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.values.length > 0) return Promise.resolve({ value: this.shift(), done: false });
    const error = this.error;
    if (error) {
      this.error = undefined;
      return Promise.reject(error);
    }
    if (this.stopped) return Promise.resolve(done());
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve(done());
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private shift(): T {
    this.queuedBytes -= this.sizes.shift()!;
    return this.values.shift()!;
  }

  private drop(): void {
    this.values.length = 0;
    this.sizes.length = 0;
    this.queuedBytes = 0;
  }

  private stop(): void {
    this.stopped = true;
    this.onEnd?.();
  }

  private wakeDone(): void {
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.(done());
  }
}

function done(): IteratorReturnResult<undefined> {
  return { value: undefined, done: true };
}
