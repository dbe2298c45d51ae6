import { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000, multiplier: 2, jitter: 0.2 };

/**
 * Runs `task` until it succeeds, with exponential backoff between attempts: for set-up steps
 * that must eventually happen while a broker may be down. Resolves `undefined` once `signal`
 * aborts.
 */
export async function retryUntilDone<T>(
  task: () => Promise<T>,
  options: {
    readonly signal: AbortSignal;
    readonly onError: (error: unknown, attempt: number, retryInMs: number) => void;
    readonly backoff?: BackoffPolicy;
  },
): Promise<T | undefined> {
  for (let attempt = 1; !options.signal.aborted; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (options.signal.aborted) return undefined;
      const retryInMs = backoffDelay(options.backoff ?? DEFAULT_BACKOFF, attempt);
      options.onError(error, attempt, retryInMs);
      await sleep(retryInMs, options.signal);
    }
  }
  return undefined;
}

/**
 * Waits for `ready` at most `timeoutMs`: true when it resolved in time, false when the time ran
 * out first (it keeps running; the caller continues in the background). Rejects if it rejects
 * in time.
 */
export async function within(ready: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([ready.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
