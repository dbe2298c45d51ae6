import { BoundedQueue } from './bounded-queue.js';

/**
 * In-process broadcast with per-listener async iteration, for notifications that never leave the
 * process (a new dead letter). Each iterator buffers at most `bufferSize` items, dropping the
 * oldest, so a stalled reader cannot grow memory.
 */
export class EventBus<T> {
  /** Every open iterator, with the filter of what it wants. */
  private readonly queues = new Map<BoundedQueue<T>, (item: T) => boolean>();

  constructor(private readonly bufferSize = 1000) {}

  publish(item: T): void {
    for (const [queue, wanted] of this.queues) if (wanted(item)) queue.push(item);
  }

  subscribe(filter: (item: T) => boolean = () => true): AsyncIterableIterator<T> {
    const queue: BoundedQueue<T> = new BoundedQueue<T>({
      items: this.bufferSize,
      overflow: 'drop-oldest',
      onEnd: () => this.queues.delete(queue),
    });
    this.queues.set(queue, filter);
    return queue;
  }

  /** Ends every open iterator. */
  close(): void {
    for (const queue of [...this.queues.keys()]) queue.close();
  }
}
