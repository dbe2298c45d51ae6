import { decodeEvent, undecodableEvent, type DecodeContext } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import type { Logger } from '../util/logger.js';
import type { Delivery } from './broker.js';

/**
 * Turns a broker message body into a `Delivery`. Never throws: a body that is not a structured
 * CloudEvent becomes a delivery with `invalid` set, which the pipeline dead-letters with its raw
 * body instead of crashing the consumer.
 */
export function decodeDelivery(body: Uint8Array | string, context: DecodeContext & { attempt: number; messageId?: string | undefined }): Delivery {
  try {
    return { event: decodeEvent(body, context), attempt: context.attempt };
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

/**
 * Hands a fan-out message's event to its subscriber: a body that is not a structured CloudEvent
 * is logged with `ids` and skipped, and a subscriber that throws is logged, never propagated.
 */
export function deliverToSubscriber(
  body: Uint8Array | string,
  topic: string,
  onEvent: (event: GatewayEvent) => void,
  logger: Logger,
  ids: Record<string, unknown>,
  /** The message's native trace headers (see `DecodeContext`). */
  traceHeaders: Omit<DecodeContext, 'topic'> = {},
): void {
  let event: GatewayEvent;
  try {
    event = decodeEvent(body, { ...traceHeaders, topic });
  } catch (error) {
    logger.warn({ err: error, topic, ...ids }, 'skipped a fan-out message that is not a CloudEvent');
    return;
  }
  try {
    onEvent(event);
  } catch (error) {
    logger.error({ err: error, topic, eventId: event.id, ...ids }, 'a subscriber failed on an event');
  }
}
