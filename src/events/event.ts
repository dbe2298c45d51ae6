import { z } from 'zod';

/**
 * The one event shape the gateway moves around. It is a CloudEvents 1.0 event with the
 * extensions `topic`, `partitionkey`, `correlationid`, `causationid`, `traceparent` and
 * `tracestate`, plus any other extension attributes it came with; see `codec.ts` for how it
 * travels on a broker.
 */
export interface GatewayEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** Gateway topic: which stream of events this belongs to (`orders`). */
  readonly topic: string;
  readonly subject: string | null;
  readonly time: Date;
  readonly dataContentType: string;
  readonly data: unknown;
  /** Partition key: events with the same key keep their order. */
  readonly key: string | null;
  readonly correlationId: string | null;
  readonly causationId: string | null;
  /** CloudEvents `dataschema`: the URI of the schema `data` adheres to. */
  readonly dataSchema: string | null;
  /**
   * W3C `traceparent` of the work that produced the event (CloudEvents distributed-tracing
   * extension): always set on events the gateway publishes, and on foreign events that carried a
   * valid one. Never an invalid value.
   */
  readonly traceparent: string | null;
  /** W3C `tracestate` that goes with `traceparent`; null without a `traceparent`. */
  readonly tracestate: string | null;
  /**
   * Other CloudEvents extension attributes the event carries (a foreign producer's, or given at
   * publish), by name: lowercase letters and digits, never one of the attributes above.
   */
  readonly extensions: Extensions | null;
}

export type Extensions = Readonly<Record<string, ExtensionValue>>;

/** What an extension attribute may hold in structured JSON: CloudEvents String, Integer or Boolean. */
export type ExtensionValue = string | number | boolean;

/**
 * Topics become parts of routing keys, subjects and Kafka topic names, so they are plain
 * tokens: no dots, no wildcards, no spaces. A leading letter or digit keeps the `_`-prefixed
 * names free for the gateway's own use.
 */
export const TOPIC_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/**
 * Types are dotted names (`com.example.order.created`); each segment must be a valid
 * NATS subject token and RabbitMQ routing-key word.
 */
export const TYPE_PATTERN = /^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$/;

export const topicSchema = z.string().regex(TOPIC_PATTERN, 'topic must be 1-100 letters, digits, "_" or "-", starting with a letter or digit');

export const typeSchema = z
  .string()
  .max(200, 'type must be at most 200 characters')
  .regex(TYPE_PATTERN, 'type must be dot-separated words of letters, digits, "_", ":", "/" or "-"');

const shortText = (name: string, max: number) => z.string().min(1, `${name} must not be empty`).max(max, `${name} must be at most ${max} characters`);

export const eventIdSchema = shortText('id', 200);
export const sourceSchema = shortText('source', 500);
export const subjectSchema = shortText('subject', 500);
export const keySchema = shortText('key', 256);
export const correlationIdSchema = shortText('correlationId', 200);
export const causationIdSchema = shortText('causationId', 200);

export const JSON_CONTENT_TYPE = 'application/json';

/** CloudEvents attribute names: lowercase ASCII letters and digits. */
export const ATTRIBUTE_NAME_PATTERN = /^[a-z0-9]+$/;
/** CloudEvents recommends names of at most 20 characters; the gateway holds what it is given to it. */
export const MAX_EXTENSION_NAME_LENGTH = 20;
/** Extension attributes a publish may add: as many as fit in `MAX_EVENT_BYTES`, but no more than this. */
export const MAX_EXTENSIONS = 50;

/**
 * Attributes the event model has a field for (CloudEvents context attributes and the gateway's
 * extensions): never taken as, nor written from, `extensions`.
 */
export const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'datacontenttype',
  'dataschema',
  'data',
  'data_base64',
  'topic',
  'partitionkey',
  'correlationid',
  'causationid',
  'traceparent',
  'tracestate',
]);

/** CloudEvents `dataschema`: an absolute URI. */
export const dataSchemaSchema = z
  .string()
  .max(2000, 'dataSchema must be at most 2000 characters')
  .refine((value) => URL.canParse(value), 'dataSchema must be an absolute URI (https://example.com/schemas/order.json)');

const extensionValueSchema = z.union(
  [
    z.string().max(4096, 'an extension value must be at most 4096 characters'),
    // CloudEvents Integer: a signed 32-bit number.
    z.number().int('an extension number must be an integer').min(-2147483648).max(2147483647),
    z.boolean(),
  ],
  { error: 'an extension value must be a string, an integer or a boolean' },
);

/** Extension attributes given at publish: valid CloudEvents names that the gateway does not reserve. */
export const extensionsSchema = z.record(z.string(), extensionValueSchema).superRefine((extensions, ctx) => {
  const names = Object.keys(extensions);
  if (names.length > MAX_EXTENSIONS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_EXTENSIONS} extension attributes` });
  for (const name of names) {
    const problem = extensionNameProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
  }
});

function extensionNameProblem(name: string): string | null {
  if (!ATTRIBUTE_NAME_PATTERN.test(name)) return 'an extension name is lowercase letters a-z and digits only (CloudEvents)';
  if (name.length > MAX_EXTENSION_NAME_LENGTH) return `an extension name is at most ${MAX_EXTENSION_NAME_LENGTH} characters`;
  if (RESERVED_ATTRIBUTES.has(name)) return `"${name}" is reserved: it is a CloudEvents or gateway attribute${inputFieldFor(name)}`;
  return null;
}

const INPUT_FIELDS: Readonly<Record<string, string>> = {
  id: 'id',
  source: 'source',
  type: 'type',
  subject: 'subject',
  data: 'data',
  dataschema: 'dataSchema',
  topic: 'topic',
  partitionkey: 'key',
  correlationid: 'correlationId',
  causationid: 'causationId',
  traceparent: 'the traceparent request header',
  tracestate: 'the tracestate request header',
};

const inputFieldFor = (name: string): string => (INPUT_FIELDS[name] ? `; use ${INPUT_FIELDS[name]}` : '');
