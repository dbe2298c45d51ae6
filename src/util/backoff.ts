/** Exponential backoff with jitter, shared by the relay, consumer retries and reconnects. */
export interface BackoffPolicy {
  /** Delay before the first retry. */
  readonly initialMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /** Growth per attempt. */
  readonly multiplier: number;
  /** Fraction of the delay randomised either way (0.2 → ±20 %), so retries do not move in lockstep. */
  readonly jitter: number;
}

/**
 * Delay before retry number `retry` (1 = first retry): initial × multiplier^(retry-1), capped at
 * `maxMs`, then spread by ±jitter (and still capped).
 */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, retry - 1);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** exponent);
  const spread = base * policy.jitter * (random() * 2 - 1);
  return Math.round(Math.min(policy.maxMs, Math.max(0, base + spread)));
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
