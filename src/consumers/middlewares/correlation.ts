import { AsyncLocalStorage } from 'node:async_hooks';
import type { Middleware } from '../middleware.js';

export interface CorrelationContext {
  readonly consumer: string;
  readonly eventId: string;
  /** The event's correlation id, or its own id when it has none (it then starts the chain). */
  readonly correlationId: string;
}

const storage = new AsyncLocalStorage<CorrelationContext>();

/** The correlation context of the delivery being handled, for logs and outgoing calls. */
export function currentCorrelation(): CorrelationContext | undefined {
  return storage.getStore();
}

export function correlationIdOf(event: { id: string; correlationId: string | null }): string {
  return event.correlationId ?? event.id;
}

/** Makes the delivery's correlation id available to everything the handler calls. */
export function correlation(consumer: string): Middleware {
  return (next) => (delivery) => storage.run({ consumer, eventId: delivery.event.id, correlationId: correlationIdOf(delivery.event) }, () => next(delivery));
}
