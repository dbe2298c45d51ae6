/**
 * The window of one durable-consumer attachment: at most `limit` records handed over and not yet
 * settled. Waiters are served first come, first served, so records of one partition are handed
 * to the sink in offset order.
 */
export class Capacity {
  private running = 0;
  private readonly waiters: ((granted: boolean) => void)[] = [];
  private closed = false;

  constructor(private readonly limit: number) {}

  /**
   * Takes a slot. Resolves true once one is free, false when `timeoutMs` passed first (the caller
   * may heartbeat and ask again) or when the capacity was closed.
   */
  acquire(timeoutMs?: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.running < this.limit && this.waiters.length === 0) {
      this.running++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = (granted: boolean) => {
        clearTimeout(timer);
        resolve(granted);
      };
      this.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          resolve(false);
        }, timeoutMs);
      }
    });
  }

  /** Returns a slot, handing it straight to the longest waiter. */
  release(): void {
    const next = this.waiters.shift();
    if (next && !this.closed) next(true);
    else this.running--;
  }

  /** Refuses every current and future waiter; slots in use are still released normally. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter(false);
  }
}
