import type { Middleware } from '../middleware.js';

/**
 * Runs deliveries of one key one after another, in the order the broker handed them over, while
 * deliveries of other keys (and events without a key) run concurrently. A retried delivery gives
 * way: it settles as "retry" at once and comes back later, so it never blocks its key.
 */
export function keyOrder(): Middleware {
  const tails = new Map<string, Promise<unknown>>();
  return (next) => (delivery) => {
    const key = delivery.event.key;
    if (key === null) return next(delivery);
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(() => next(delivery));
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}
