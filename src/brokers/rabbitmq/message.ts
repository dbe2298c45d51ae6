import type { Message } from 'amqplib';
import { CLOUDEVENTS_CONTENT_TYPE } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import { cloudEventHeaders } from '../headers.js';
import type { SendOptions } from './confirms.js';

/** The AMQP binding of CloudEvents names its application properties `cloudEvents:<attribute>`. */
export const CLOUDEVENTS_HEADER_PREFIX = 'cloudEvents:';

/** Why a message was dead-lettered (on `<consumer>.dlq`), or why its last attempt failed (on retry queues). */
export const ERROR_HEADER = 'x-gateway-error';

/** The consumer that dead-lettered a message, on `<consumer>.dlq`. */
export const CONSUMER_HEADER = 'x-gateway-consumer';

/** Headers longer than this are cut: an error message is a hint for operators, not a payload. */
const MAX_ERROR_HEADER_LENGTH = 2000;

/** RabbitMQ's own dead-lettering records; never copied onto a message the gateway sends again. */
const BROKER_DEATH_HEADER = /^x-(death|first-death-|last-death-)/;

/**
 * Properties of an event's message: persistent, `application/cloudevents+json`, the event id as
 * `messageId`, the correlation id as `correlationId`, and the CloudEvents attributes as headers
 * too, so tools that never parse the body can still route, filter and correlate.
 */
export function eventProperties(event: GatewayEvent, headers: Record<string, unknown> = {}): SendOptions {
  return {
    persistent: true,
    contentType: CLOUDEVENTS_CONTENT_TYPE,
    messageId: event.id,
    type: event.type,
    timestamp: Math.floor(event.time.getTime() / 1000),
    correlationId: event.correlationId ?? undefined,
    headers: { ...cloudEventHeaders(event, CLOUDEVENTS_HEADER_PREFIX), ...headers },
  };
}

/**
 * Properties for sending a delivered message on to a retry or dead-letter queue: its own
 * properties and headers (a message a plain client sent keeps what it had), persistent, minus
 * RabbitMQ's death records, plus `headers`.
 */
export function forwardedProperties(message: Message, messageId: string, headers: Record<string, unknown>): SendOptions {
  const { properties } = message;
  const kept = Object.entries(properties.headers ?? {}).filter(([name]) => !BROKER_DEATH_HEADER.test(name));
  return {
    persistent: true,
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    messageId: typeof properties.messageId === 'string' ? properties.messageId : messageId,
    correlationId: properties.correlationId,
    type: properties.type,
    timestamp: properties.timestamp,
    appId: properties.appId,
    headers: { ...Object.fromEntries(kept), ...headers },
  };
}

export function errorHeader(error: string): string {
  return error.length > MAX_ERROR_HEADER_LENGTH ? `${error.slice(0, MAX_ERROR_HEADER_LENGTH)}…` : error;
}
