import { errorMessage } from '../../errors.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { Middleware } from '../middleware.js';

export interface RetryPolicy {
  /** Handler runs before the message is dead-lettered (the first delivery counts). */
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
}

/**
 * Turns a handler failure into a settlement: another attempt after an exponential backoff while
 * attempts remain, else a dead letter carrying the error. A `PermanentHandlerError` is
 * dead-lettered at once.
 */
export function retry(policy: RetryPolicy): Middleware {
  return (next) => async (delivery) => {
    try {
      return await next(delivery);
    } catch (error) {
      const message = errorMessage(error);
      if (isDeclaredPermanent(error) || delivery.attempt >= policy.maxAttempts) return { kind: 'dead-letter', error: message };
      return { kind: 'retry', delayMs: backoffDelay(policy.backoff, delivery.attempt), error: message };
    }
  };
}

/**
 * Only a `PermanentHandlerError` skips the remaining attempts; any other failure (a webhook's
 * 500, a timeout, an unknown exception) is worth another try.
 */
function isDeclaredPermanent(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'HANDLER_PERMANENT_FAILURE';
}
