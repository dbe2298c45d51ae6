import type { Message } from 'amqplib';
import { CLOUDEVENTS_CONTENT_TYPE } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import { cloudEventHeaders } from '../headers.js';
import type { SendOptions } from './confirms.js';

/** The AMQP binding of CloudEvents names its application properties `cloudEvents:<attribute>`. */
const CLOUDEVENTS_HEADER_PREFIX = 'cloudEvents:';

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
