import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import { CLOUDEVENTS_CONTENT_TYPE, encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import { ATTEMPT_HEADER, cloudEventHeaders, CONSUMER_HEADER, ERROR_HEADER, errorHeaderValue } from '../headers.js';

/** Epoch milliseconds before which a retry-topic message must not be handled. */
const NOT_BEFORE_HEADER = 'x-gateway-not-before';
/** `<topic>/<partition>/<offset>` of the message a retry or dead-letter copy was made from. */
const ORIGIN_HEADER = 'x-gateway-origin';
const CONTENT_TYPE_HEADER = 'content-type';

/** Headers the adapter rewrites on every copy, so a copy of a copy carries only the latest. */
const GATEWAY_HEADERS = [ATTEMPT_HEADER, NOT_BEFORE_HEADER, ERROR_HEADER, CONSUMER_HEADER, ORIGIN_HEADER];

/**
 * An event as a Kafka record: key = the event's key, else its id, so the default (murmur2,
 * Java-compatible) partitioner keeps one key on one partition; value = the structured CloudEvent;
 * headers = the CloudEvents attributes with the Kafka binding's `ce_` prefix, plus `content-type`.
 */
export function eventMessage(event: GatewayEvent): Message {
  return {
    key: event.key ?? event.id,
    value: encodeEvent(event),
    headers: { ...cloudEventHeaders(event, 'ce_'), [CONTENT_TYPE_HEADER]: CLOUDEVENTS_CONTENT_TYPE },
  };
}

/** Where a consumed record came from, for logs and the origin header. */
export interface RecordOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export const describeOrigin = (origin: RecordOrigin): string => `${origin.topic}/${origin.partition}/${origin.offset}`;

/** A consumed record sent on to a consumer's retry topic, byte for byte, with its next attempt. */
export function retryMessage(
  source: KafkaMessage,
  context: { origin: RecordOrigin; consumer: string; attempt: number; notBefore: number; error: string },
): Message {
  return copyOf(source, context, { [ATTEMPT_HEADER]: String(context.attempt), [NOT_BEFORE_HEADER]: String(context.notBefore) });
}

/** A consumed record sent to a consumer's dead-letter topic, with the error and attempts made. */
export function deadLetterMessage(source: KafkaMessage, context: { origin: RecordOrigin; consumer: string; attempts: number; error: string }): Message {
  return copyOf(source, context, { [ATTEMPT_HEADER]: String(context.attempts) });
}

function copyOf(source: KafkaMessage, context: { origin: RecordOrigin; consumer: string; error: string }, headers: Record<string, string>): Message {
  return {
    key: source.key,
    value: source.value,
    headers: {
      ...withoutGatewayHeaders(source.headers),
      ...headers,
      [ERROR_HEADER]: errorHeaderValue(context.error),
      [CONSUMER_HEADER]: context.consumer,
      [ORIGIN_HEADER]: describeOrigin(context.origin),
    },
  };
}

/** An event handed back to one consumer as a first attempt, due at once (dead-letter replay). */
export function redeliveryMessage(event: GatewayEvent, consumer: string): Message {
  const message = eventMessage(event);
  return {
    ...message,
    headers: { ...message.headers, [ATTEMPT_HEADER]: '1', [NOT_BEFORE_HEADER]: String(Date.now()), [CONSUMER_HEADER]: consumer },
  };
}

/** A header as text; repeated headers give their last value. */
export function readHeader(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (last === undefined) return undefined;
  return typeof last === 'string' ? last : last.toString('utf8');
}

/** When a retry-topic record is due; 0 (now) when the header is missing or garbled. */
export function notBeforeOf(message: KafkaMessage): number {
  const due = Number(readHeader(message.headers, NOT_BEFORE_HEADER));
  return Number.isFinite(due) ? due : 0;
}

function withoutGatewayHeaders(headers: IHeaders | undefined): IHeaders {
  const copy: IHeaders = { ...headers };
  for (const name of GATEWAY_HEADERS) delete copy[name];
  return copy;
}
