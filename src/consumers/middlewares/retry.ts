import { errorMessage, PermanentHandlerError, WebhookError } from '../../errors.js';
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
 * dead-lettered at once. A webhook's `Retry-After` lengthens the wait, up to `backoff.maxMs`.
 */
export function retry(policy: RetryPolicy): Middleware {
  return (next) => async (delivery) => {
    try {
      return await next(delivery);
    } catch (error) {
      const message = errorMessage(error);
      // Only a PermanentHandlerError (a webhook's 4xx among them) skips the remaining attempts;
      // any other failure (a 500, a timeout, an unknown exception) is worth another try.
      if (error instanceof PermanentHandlerError || delivery.attempt >= policy.maxAttempts) return { kind: 'dead-letter', error: message };
      return { kind: 'retry', delayMs: retryDelay(policy, delivery.attempt, error), error: message };
    }
  };
}

/**
 * The backoff for this attempt, or longer when the failure asked for a wait (a webhook's
 * `Retry-After`); never more than `backoff.maxMs`.
 */
function retryDelay(policy: RetryPolicy, attempt: number, error: unknown): number {
  const backoff = backoffDelay(policy.backoff, attempt);
  const asked = error instanceof WebhookError ? error.retryAfterMs : undefined;
  return asked === undefined ? backoff : Math.min(Math.max(backoff, asked), policy.backoff.maxMs);
}
