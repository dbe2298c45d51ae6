import { z } from 'zod';
import { InvalidMessageError } from '../errors.js';
import { checkTrace } from '../tracing/trace-context.js';
import { ATTRIBUTE_NAME_PATTERN, JSON_CONTENT_TYPE, RESERVED_ATTRIBUTES, type ExtensionValue, type GatewayEvent } from './event.js';

/**
 * The wire format on every broker: a structured-mode CloudEvents 1.0 JSON document
 * (`application/cloudevents+json`). The gateway's own attributes are CloudEvents extensions:
 * `topic`, `partitionkey` (the CloudEvents partitioning extension), `correlationid`,
 * `causationid`, and `traceparent`/`tracestate` (the distributed-tracing extension). Other
 * extension attributes travel beside them as they came. Absent optional attributes are left out,
 * never sent as null.
 */
export interface StructuredCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype: string;
  dataschema?: string;
  data?: unknown;
  topic: string;
  partitionkey?: string;
  correlationid?: string;
  causationid?: string;
  traceparent?: string;
  tracestate?: string;
  /** Other extension attributes. */
  [extension: string]: unknown;
}

export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

export function toCloudEvent(event: GatewayEvent): StructuredCloudEvent {
  const ce: StructuredCloudEvent = {
    specversion: '1.0',
    id: event.id,
    source: event.source,
    type: event.type,
    time: event.time.toISOString(),
    datacontenttype: event.dataContentType,
    topic: event.topic,
  };
  if (event.subject !== null) ce.subject = event.subject;
  if (event.dataSchema !== null) ce.dataschema = event.dataSchema;
  if (event.data !== undefined) ce.data = event.data;
  if (event.key !== null) ce.partitionkey = event.key;
  if (event.correlationId !== null) ce.correlationid = event.correlationId;
  if (event.causationId !== null) ce.causationid = event.causationId;
  if (event.traceparent !== null) {
    ce.traceparent = event.traceparent;
    if (event.tracestate !== null) ce.tracestate = event.tracestate;
  }
  if (event.extensions !== null) {
    // An event built in code may name a modelled attribute here: the field stays the one that counts.
    for (const name in event.extensions) if (!RESERVED_ATTRIBUTES.has(name)) ce[name] = event.extensions[name];
  }
  return ce;
}

/** Wire bodies already known for an event object (e.g. read from the outbox), by identity. */
const encodedBodies = new WeakMap<GatewayEvent, Buffer>();

/** The structured CloudEvent JSON of an event, as bytes; reuses a body the event was read from. */
export function encodeEvent(event: GatewayEvent): Buffer {
  let body = encodedBodies.get(event);
  if (!body) {
    body = Buffer.from(JSON.stringify(toCloudEvent(event)));
    encodedBodies.set(event, body);
  }
  return body;
}

/**
 * Reads an event the gateway itself encoded and stored (outbox, dead letters): no validation,
 * and the stored text is kept as the event's wire body so it is not encoded again.
 */
export function decodeStoredEvent(text: string): GatewayEvent {
  const ce = JSON.parse(text) as StructuredCloudEvent;
  // Stored bodies were written by `encodeEvent`: every attribute outside the model is a kept extension.
  let extensions: Record<string, ExtensionValue> | null = null;
  for (const name in ce) if (!RESERVED_ATTRIBUTES.has(name)) (extensions ??= {})[name] = ce[name] as ExtensionValue;
  const event: GatewayEvent = {
    id: ce.id,
    source: ce.source,
    type: ce.type,
    topic: ce.topic,
    subject: ce.subject ?? null,
    time: new Date(ce.time),
    dataContentType: ce.datacontenttype,
    data: ce.data ?? null,
    key: ce.partitionkey ?? null,
    correlationId: ce.correlationid ?? null,
    causationId: ce.causationid ?? null,
    dataSchema: ce.dataschema ?? null,
    traceparent: ce.traceparent ?? null,
    tracestate: ce.tracestate ?? null,
    extensions,
  };
  encodedBodies.set(event, Buffer.from(text));
  return event;
}

const optionalText = z.string().min(1).optional();

// Loose: extension attributes are kept (and sorted out in `toGatewayEvent`), not stripped.
const incoming = z.looseObject({
  specversion: z.literal('1.0', { error: 'specversion must be "1.0"' }),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  subject: optionalText,
  time: z.iso.datetime({ offset: true }).optional(),
  datacontenttype: optionalText,
  dataschema: optionalText,
  data: z.unknown().optional(),
  topic: optionalText,
  partitionkey: optionalText,
  correlationid: optionalText,
  causationid: optionalText,
  // An invalid trace context is dropped, never a reason to refuse the event (see `toGatewayEvent`).
  traceparent: z.unknown().optional(),
  tracestate: z.unknown().optional(),
});

/** Where the adapter found the message, for attributes a plain client may have left out. */
export interface DecodeContext {
  /** The gateway topic implied by where the message arrived (routing key, subject, Kafka topic). */
  readonly topic: string;
  /**
   * The message's native `traceparent`/`tracestate` headers (an OpenTelemetry instrumentation of
   * the producer's client puts them there): the event's trace context when its body has no valid
   * one of its own. The body's attributes win.
   */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

type IncomingCloudEvent = z.infer<typeof incoming>;

const OPTIONAL_TEXT = ['subject', 'datacontenttype', 'dataschema', 'topic', 'partitionkey', 'correlationid', 'causationid'] as const;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/**
 * The common case checked by hand (every message of a busy consumer passes through here); a body
 * it does not vouch for goes through the zod schema, which also words the error.
 */
function looksValid(json: unknown): json is IncomingCloudEvent {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return false;
  const ce = json as Record<string, unknown>;
  if (ce['specversion'] !== '1.0' || !isText(ce['id']) || !isText(ce['source']) || !isText(ce['type'])) return false;
  for (const name of OPTIONAL_TEXT) if (ce[name] !== undefined && !isText(ce[name])) return false;
  const time = ce['time'];
  return time === undefined || (typeof time === 'string' && ISO_WITH_OFFSET.test(time) && !Number.isNaN(Date.parse(time)));
}

/**
 * Parses a structured CloudEvent. Throws `InvalidMessageError` for anything else, so an adapter
 * can hand the message to the pipeline as poison instead of crashing its consumer. Extension
 * attributes (lowercase a-z0-9 names, string, number or boolean values) are kept; others, and an
 * invalid `traceparent` or `tracestate`, are dropped. A body that says exactly what the decoded
 * event holds (nothing dropped, nothing defaulted) is kept as the event's encoding, so a webhook,
 * a dead letter and a replay send the bytes that arrived instead of encoding them again.
 */
export function decodeEvent(body: Uint8Array | string, context: DecodeContext): GatewayEvent {
  let json: unknown;
  const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InvalidMessageError('message body is not JSON', { cause });
  }
  let ce: IncomingCloudEvent;
  if (looksValid(json)) {
    ce = json;
  } else {
    const parsed = incoming.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
      throw new InvalidMessageError(`message is not a structured CloudEvent: ${where}${issue?.message ?? 'invalid'}`);
    }
    ce = parsed.data;
  }
  const decoded = toGatewayEvent(ce, context);
  if (decoded.asReceived) {
    // A copy: a client library may reuse the memory its message came in.
    encodedBodies.set(decoded.event, Buffer.from(typeof body === 'string' ? body : body.slice()));
  }
  return decoded.event;
}

/**
 * The event a valid body describes, and whether the body says exactly that (`asReceived`):
 * false when the decode filled in a default (topic, time, content type) or left something out
 * (an attribute it cannot hold, an invalid trace context), so the body must be encoded anew.
 */
function toGatewayEvent(ce: IncomingCloudEvent, context: DecodeContext): { event: GatewayEvent; asReceived: boolean } {
  let asReceived = ce.topic !== undefined && ce.time !== undefined && ce.datacontenttype !== undefined;
  let extensions: Record<string, ExtensionValue> | null = null;
  for (const name in ce) {
    if (RESERVED_ATTRIBUTES.has(name)) {
      // `data_base64` (binary data) is the one attribute of the format the model does not hold.
      if (name === 'data_base64') asReceived = false;
      continue;
    }
    const value = ce[name];
    if (isExtensionValue(value) && ATTRIBUTE_NAME_PATTERN.test(name)) (extensions ??= {})[name] = value;
    else asReceived = false;
  }
  let trace = checkTrace(ce.traceparent, ce.tracestate);
  if (trace) {
    if (trace.traceparent !== ce.traceparent || (ce.tracestate !== undefined && trace.tracestate !== ce.tracestate)) asReceived = false;
  } else {
    if (ce.traceparent !== undefined || ce.tracestate !== undefined) asReceived = false;
    trace = context.traceparent === undefined ? null : checkTrace(context.traceparent, context.tracestate);
    if (trace) asReceived = false;
  }
  const event: GatewayEvent = {
    id: ce.id,
    source: ce.source,
    type: ce.type,
    topic: ce.topic ?? context.topic,
    subject: ce.subject ?? null,
    time: ce.time ? new Date(ce.time) : new Date(),
    dataContentType: ce.datacontenttype ?? JSON_CONTENT_TYPE,
    data: ce.data ?? null,
    key: ce.partitionkey ?? null,
    correlationId: ce.correlationid ?? null,
    causationId: ce.causationid ?? null,
    dataSchema: ce.dataschema ?? null,
    traceparent: trace?.traceparent ?? null,
    tracestate: trace?.tracestate ?? null,
    extensions,
  };
  return { event, asReceived };
}

/** CloudEvents String, Integer and Boolean in JSON; anything else (null, objects, arrays) is not an attribute value. */
const isExtensionValue = (value: unknown): value is ExtensionValue =>
  typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));

/** The type of the stand-in event for a message that could not be decoded. */
export const INVALID_MESSAGE_TYPE = 'gateway.invalid-message';

/**
 * Stand-in for a message that could not be decoded, so that it can be dead-lettered and shown
 * in the DLQ with its raw body rather than dropped.
 */
export function undecodableEvent(body: Uint8Array | string, context: DecodeContext & { messageId?: string | undefined }): GatewayEvent {
  const raw = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  return {
    id: context.messageId ?? `invalid-${crypto.randomUUID()}`,
    source: 'event-gateway',
    type: INVALID_MESSAGE_TYPE,
    topic: context.topic,
    subject: null,
    time: new Date(),
    dataContentType: JSON_CONTENT_TYPE,
    data: { raw: raw.length > 4096 ? `${raw.slice(0, 4096)}…` : raw },
    key: null,
    correlationId: null,
    causationId: null,
    dataSchema: null,
    traceparent: null,
    tracestate: null,
    extensions: null,
  };
}
