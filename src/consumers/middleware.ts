import type { Delivery, Settlement } from '../brokers/broker.js';
import type { DeliveryHandler, HandlerOutcome } from './delivery-runtime.js';

/**
 * A step around a delivery handler, in the style of Watermill's router middleware: it may act
 * before calling `next`, after it, or instead of it. Retry, dead-lettering, idempotency and
 * correlation are middlewares, so no broker adapter repeats them.
 */
export type Middleware = (next: DeliveryHandler) => DeliveryHandler;

/** `compose(a, b, c)(h)` runs a → b → c → h: the first middleware is the outermost. */
export function compose(...middlewares: readonly Middleware[]): Middleware {
  return (handler) => middlewares.reduceRight((next, middleware) => middleware(next), handler);
}

export const ACK: Settlement = { kind: 'ack' };

export type { Delivery, DeliveryHandler, HandlerOutcome, Settlement };
