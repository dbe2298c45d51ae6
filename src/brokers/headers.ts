import { RESERVED_ATTRIBUTES, type GatewayEvent } from '../events/event.js';

/**
 * The gateway's own attempt counter, carried on messages it sends back for a retry. Brokers'
 * own counters are not relied on (RabbitMQ's `x-death` count stops counting in 3.13+).
 */
export const ATTEMPT_HEADER = 'x-gateway-attempt';

/** Why the last attempt failed (on retry copies) or why the message was given up (on dead letters). */
export const ERROR_HEADER = 'x-gateway-error';

/** The durable consumer a retry or dead-letter copy belongs to. */
export const CONSUMER_HEADER = 'x-gateway-consumer';

/** An error in a header is a hint for operators, not a payload: long ones are cut. */
const MAX_ERROR_HEADER_LENGTH = 2000;

export function errorHeaderValue(error: string): string {
  return error.length > MAX_ERROR_HEADER_LENGTH ? `${error.slice(0, MAX_ERROR_HEADER_LENGTH)}…` : error;
}

/** Correlation travels as a plain header too, for tools that never parse the body. */
const CORRELATION_HEADER = 'x-correlation-id';

/** W3C trace context headers, named as OpenTelemetry's propagator and instrumentations read them. */
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

/**
 * CloudEvents attributes as transport headers, next to the structured body, so that brokers'
 * tools and plain clients can route and filter without parsing JSON. The body stays the source
 * of truth. `prefix` follows each protocol binding: `ce_` (Kafka), `cloudEvents:` (AMQP),
 * `ce-` (NATS, as in HTTP). The trace context goes unprefixed, as W3C `traceparent` and
 * `tracestate`, where broker tooling and OpenTelemetry instrumentations of other clients look.
 */
export function cloudEventHeaders(event: GatewayEvent, prefix: string): Record<string, string> {
  const headers: Record<string, string> = {
    [`${prefix}specversion`]: '1.0',
    [`${prefix}id`]: event.id,
    [`${prefix}source`]: event.source,
    [`${prefix}type`]: event.type,
    [`${prefix}time`]: event.time.toISOString(),
    [`${prefix}topic`]: event.topic,
  };
  if (event.subject !== null) headers[`${prefix}subject`] = event.subject;
  if (event.key !== null) headers[`${prefix}partitionkey`] = event.key;
  if (event.correlationId !== null) {
    headers[`${prefix}correlationid`] = event.correlationId;
    headers[CORRELATION_HEADER] = event.correlationId;
  }
  if (event.causationId !== null) headers[`${prefix}causationid`] = event.causationId;
  if (event.dataSchema !== null) headers[`${prefix}dataschema`] = event.dataSchema;
  if (event.traceparent !== null) {
    headers[TRACEPARENT_HEADER] = event.traceparent;
    if (event.tracestate !== null) headers[TRACESTATE_HEADER] = event.tracestate;
  }
  if (event.extensions !== null) {
    for (const name in event.extensions) {
      const value = String(event.extensions[name]);
      // A line break would end a NATS header early; such a value travels in the body only.
      if (!RESERVED_ATTRIBUTES.has(name) && !LINE_BREAK.test(value)) headers[`${prefix}${name}`] = value;
    }
  }
  return headers;
}

/** The trace context a message carries in its native headers, for `decodeEvent` when its body has none. */
export function traceHeaders(read: (name: string) => unknown): { traceparent?: string; tracestate?: string } {
  const traceparent = headerText(read(TRACEPARENT_HEADER));
  if (traceparent === undefined) return NO_TRACE_HEADERS;
  return { traceparent, tracestate: headerText(read(TRACESTATE_HEADER)) };
}

const NO_TRACE_HEADERS = Object.freeze({});
const LINE_BREAK = /[\r\n]/;

/** A header value as text: clients hand them over as strings, buffers, or a list of either. */
function headerText(value: unknown): string | undefined {
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (typeof last === 'string') return last;
  if (last instanceof Uint8Array) return Buffer.from(last.buffer, last.byteOffset, last.byteLength).toString('utf8');
  return undefined;
}
