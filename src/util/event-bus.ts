/**
 * In-process broadcast with per-listener async iteration, for notifications that never leave the
 * process (a new dead letter). Each iterator buffers at most `bufferSize` items, dropping the
 * oldest, so a stalled reader cannot grow memory.
 */
export class EventBus<T> {
  private readonly listeners = new Set<(item: T) => void>();
  private readonly finishers = new Set<() => void>();

  constructor(private readonly bufferSize = 1000) {}

  publish(item: T): void {
    for (const listener of this.listeners) listener(item);
  }

  subscribe(filter: (item: T) => boolean = () => true): AsyncIterableIterator<T> {
    const buffer: T[] = [];
    let wake: ((result: IteratorResult<T>) => void) | undefined;
    let done = false;
    const listener = (item: T) => {
      if (!filter(item)) return;
      if (wake) {
        const resolve = wake;
        wake = undefined;
        resolve({ value: item, done: false });
        return;
      }
      buffer.push(item);
      if (buffer.length > this.bufferSize) buffer.shift();
    };
    this.listeners.add(listener);
    const finish = (): IteratorResult<T> => {
      done = true;
      this.listeners.delete(listener);
      this.finishers.delete(finish);
      buffer.length = 0;
      wake?.({ value: undefined, done: true });
      wake = undefined;
      return { value: undefined, done: true };
    };
    this.finishers.add(finish);
    return {
      next: () => {
        if (buffer.length > 0) return Promise.resolve({ value: buffer.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (wake = resolve));
      },
      return: async () => finish(),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Ends every open iterator. */
  close(): void {
    for (const finish of [...this.finishers]) finish();
  }
}
