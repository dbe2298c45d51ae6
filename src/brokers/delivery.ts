import { decodeEvent, undecodableEvent } from '../events/codec.js';
import type { Delivery } from './broker.js';

/**
 * Turns a broker message body into a `Delivery`. Never throws: a body that is not a structured
 * CloudEvent becomes a delivery with `invalid` set, which the pipeline dead-letters with its raw
 * body instead of crashing the consumer.
 */
export function decodeDelivery(
  body: Uint8Array | string,
  context: { topic: string; attempt: number; messageId?: string | undefined },
): Delivery {
  try {
    return { event: decodeEvent(body, { topic: context.topic }), attempt: context.attempt };
  } catch (error) {
    return {
      event: undecodableEvent(body, { topic: context.topic, messageId: context.messageId }),
      attempt: context.attempt,
      invalid: error as Error,
    };
  }
}

/** Reads an attempt counter the gateway wrote into a header; 1 when absent or garbled. */
export function parseAttempt(value: unknown): number {
  const text = value instanceof Uint8Array ? Buffer.from(value).toString() : value;
  const n = typeof text === 'number' ? text : Number(text);
  return Number.isSafeInteger(n) && n >= 1 ? n : 1;
}
