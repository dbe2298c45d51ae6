/**
 * A wake-up call between two parts of one process (a mutation committing, the relay sleeping).
 * `wait` resolves on the next `notify`, after `timeoutMs`, or when `abort` fires, whichever is
 * first; a notify with nobody waiting is remembered once, so a wake-up is never missed.
 */
export class Signal {
  private waiters = new Set<() => void>();
  private pending = false;

  notify(): void {
    if (this.waiters.size === 0) {
      this.pending = true;
      return;
    }
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  wait(timeoutMs: number, abort?: AbortSignal): Promise<void> {
    if (this.pending || abort?.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.waiters.add(done);
      abort?.addEventListener('abort', done, { once: true });
    });
  }
}
