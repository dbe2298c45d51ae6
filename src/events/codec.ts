import { z } from 'zod';
import { InvalidMessageError } from '../errors.js';
import { JSON_CONTENT_TYPE, type GatewayEvent } from './event.js';

/**
 * The wire format on every broker: a structured-mode CloudEvents 1.0 JSON document
 * (`application/cloudevents+json`). The gateway's own attributes are CloudEvents extensions:
 * `topic`, `partitionkey` (the CloudEvents partitioning extension), `correlationid` and
 * `causationid`. Absent optional attributes are left out, never sent as null.
 */
export interface StructuredCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype: string;
  data?: unknown;
  topic: string;
  partitionkey?: string;
  correlationid?: string;
  causationid?: string;
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
  if (event.data !== undefined) ce.data = event.data;
  if (event.key !== null) ce.partitionkey = event.key;
  if (event.correlationId !== null) ce.correlationid = event.correlationId;
  if (event.causationId !== null) ce.causationid = event.causationId;
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
  };
  encodedBodies.set(event, Buffer.from(text));
  return event;
}

const optionalText = z.string().min(1).optional();

const incoming = z.object({
  specversion: z.literal('1.0', { error: 'specversion must be "1.0"' }),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  subject: optionalText,
  time: z.iso.datetime({ offset: true }).optional(),
  datacontenttype: optionalText,
  data: z.unknown().optional(),
  topic: optionalText,
  partitionkey: optionalText,
  correlationid: optionalText,
  causationid: optionalText,
});

/** Where the adapter found the message, for attributes a plain client may have left out. */
export interface DecodeContext {
  /** The gateway topic implied by where the message arrived (routing key, subject, Kafka topic). */
  readonly topic: string;
}

type IncomingCloudEvent = z.infer<typeof incoming>;

const OPTIONAL_TEXT = ['subject', 'datacontenttype', 'topic', 'partitionkey', 'correlationid', 'causationid'] as const;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** The attributes the gateway itself writes: a body with only these re-encodes to the same event. */
const GATEWAY_ATTRIBUTES = new Set(['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'data', ...OPTIONAL_TEXT]);

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
 * can hand the message to the pipeline as poison instead of crashing its consumer. A body in
 * exactly the gateway's own shape is kept as the event's encoding, so a webhook sends the bytes
 * that arrived instead of encoding them again.
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
  const event = toGatewayEvent(ce, context);
  if (ce.topic !== undefined && ce.time !== undefined && ce.datacontenttype !== undefined && Object.keys(ce).every((name) => GATEWAY_ATTRIBUTES.has(name))) {
    // A copy: a client library may reuse the memory its message came in.
    encodedBodies.set(event, Buffer.from(typeof body === 'string' ? body : body.slice()));
  }
  return event;
}

function toGatewayEvent(ce: IncomingCloudEvent, context: DecodeContext): GatewayEvent {
  return {
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
  };
}

/** The type of the stand-in event for a message that could not be decoded. */
export const INVALID_MESSAGE_TYPE = 'gateway.invalid-message';

/**
 * Stand-in for a message that could not be decoded, so that it can be dead-lettered and shown
 * in the DLQ with its raw body rather than dropped.
 */
export function undecodableEvent(
  body: Uint8Array | string,
  context: DecodeContext & { messageId?: string | undefined },
): GatewayEvent {
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
  };
}
