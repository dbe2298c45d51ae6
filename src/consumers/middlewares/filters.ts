import { ACK, type Middleware } from '../middleware.js';

/** A message that could not be decoded cannot succeed by retrying: dead-letter it at once. */
export function rejectInvalid(): Middleware {
  return (next) => async (delivery) => (delivery.invalid ? { kind: 'dead-letter', error: delivery.invalid.message } : next(delivery));
}

/**
 * Acknowledges, without handling, events of types the consumer did not ask for. Adapters bind
 * by type where the broker can; this keeps the promise where it cannot.
 */
export function typeFilter(types: readonly string[] | undefined): Middleware {
  if (!types?.length) return (next) => next;
  const wanted = new Set(types);
  return (next) => async (delivery) => (wanted.has(delivery.event.type) ? next(delivery) : ACK);
}
