import { context as otelContext, SpanKind, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { z } from 'zod';
import { InvalidInputError, PayloadTooLargeError } from '../errors.js';
import type { OutboxRepository } from '../store/outbox-repository.js';
import { failSpan, messagingAttributes, remoteContext, traceOfSpan } from '../tracing/spans.js';
import { checkTrace, newTraceparent, type EventTrace } from '../tracing/trace-context.js';
import type { Tracing } from '../tracing/tracing.js';
import { formatPath } from '../util/path.js';
import { uuidV7 } from '../util/uuid-v7.js';
import { encodeEvent } from './codec.js';
import {
  causationIdSchema,
  correlationIdSchema,
  dataSchemaSchema,
  eventIdSchema,
  extensionsSchema,
  JSON_CONTENT_TYPE,
  keySchema,
  sourceSchema,
  subjectSchema,
  topicSchema,
  typeSchema,
  type GatewayEvent,
} from './event.js';

/** What a client gives to publish one event (the GraphQL `PublishEventInput`). */
export const publishEventInputSchema = z.object({
  topic: topicSchema,
  // The gateway names its own stand-in events `gateway.*` (see `undecodableEvent`).
  type: typeSchema.refine((type) => !type.startsWith('gateway.'), 'type must not start with "gateway." (reserved for the gateway)'),
  data: z.unknown(),
  id: eventIdSchema.nullish(),
  source: sourceSchema.nullish(),
  subject: subjectSchema.nullish(),
  key: keySchema.nullish(),
  correlationId: correlationIdSchema.nullish(),
  causationId: causationIdSchema.nullish(),
  dataSchema: dataSchemaSchema.nullish(),
  extensions: extensionsSchema.nullish(),
});

/**
 * Checked against `publishEventInputSchema`; `data` is required at run time (any JSON, null
 * included). `extensions` arrives as any JSON and is checked there.
 */
export type PublishEventInput = Omit<z.input<typeof publishEventInputSchema>, 'data' | 'extensions'> & {
  readonly data?: unknown;
  readonly extensions?: unknown;
};

export interface PublishOutcome {
  readonly event: GatewayEvent;
  readonly outboxId: number;
  /** True when an event with this id was already published: nothing was written. */
  readonly duplicate: boolean;
}

export interface EventPublisherOptions {
  /** CloudEvents `source` for events that do not name one. */
  readonly defaultSource: string;
  /** Largest structured event accepted, in bytes. */
  readonly maxEventBytes: number;
}

/** What the request says beyond its inputs (request headers, or the WebSocket upgrade request's). */
export interface PublishContext {
  /** `x-correlation-id`: the correlation id of events whose input names none. */
  readonly correlationId?: string | null;
  /** W3C `traceparent`/`tracestate` of the caller; an invalid one is ignored and a new trace started. */
  readonly traceparent?: string | null;
  readonly tracestate?: string | null;
}

/** Gives each event of one publish its trace context, and settles the spans made for them. */
interface TraceSource {
  traceFor(event: Pick<GatewayEvent, 'id' | 'topic' | 'correlationId'>): EventTrace;
  end(results: readonly { duplicate: boolean }[] | null, error?: unknown): void;
}

/**
 * The write side of the API: turns inputs into events and writes them to the outbox in one
 * transaction. Nothing reaches the broker from here; the relay does that after the commit.
 */
export class EventPublisher {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly options: EventPublisherOptions,
    private readonly tracing?: Tracing,
  ) {}

  /**
   * Validates every input, then writes all events or none, resolving once the commit is durable.
   * A client-chosen id that is already in the outbox makes that event a duplicate: nothing is
   * written for it and the first event is returned.
   *
   * Every event is stored with a trace context: the caller's `traceparent` when spans are not
   * exported (the gateway passes it on as it is), else that of a "publish" span per event, child
   * of the caller's; without a valid one from the caller, one new trace for the whole call.
   */
  async publish(inputs: readonly PublishEventInput[], context: PublishContext = {}): Promise<PublishOutcome[]> {
    const now = new Date();
    // An empty header (some proxies send one) is no header; one no input falls back to is not checked.
    const headerCorrelationId = context.correlationId || null;
    if (headerCorrelationId !== null && inputs.some((input) => input.correlationId == null)) {
      const checked = correlationIdSchema.safeParse(headerCorrelationId);
      if (!checked.success) {
        throw new InvalidInputError(`x-correlation-id header: ${checked.error.issues[0]!.message}`, { details: { field: 'x-correlation-id' } });
      }
    }
    const traces = this.traceSource(context);
    let events: GatewayEvent[];
    try {
      events = inputs.map((input, index) => this.toEvent(input, now, headerCorrelationId, inputs.length > 1 ? index : null, traces));
    } catch (error) {
      traces.end(null, error);
      throw error;
    }
    // `append` answers in the order of `events`; concurrent mutations share its commit.
    let results: Awaited<ReturnType<OutboxRepository['append']>>;
    try {
      results = await this.outbox.append(events);
    } catch (error) {
      traces.end(null, error);
      throw error;
    }
    traces.end(results);
    return results.map(({ id, duplicate, event }) => ({ event, outboxId: id, duplicate }));
  }

  private traceSource(context: PublishContext): TraceSource {
    const incoming = checkTrace(context.traceparent, context.tracestate);
    const tracer = this.tracing?.tracer;
    if (tracer) return new PublishSpans(tracer, this.tracing!.system, incoming);
    // Not exporting spans, the gateway is a pass-through hop (W3C): the caller's context as it came.
    const shared = incoming ?? { traceparent: newTraceparent(), tracestate: null };
    return { traceFor: () => shared, end: () => {} };
  }

  private toEvent(input: PublishEventInput, now: Date, headerCorrelationId: string | null, index: number | null, traces: TraceSource): GatewayEvent {
    const where = index === null ? 'input' : `inputs[${index}]`;
    const parsed = publishEventInputSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = formatPath([where, ...issue.path]);
      throw new InvalidInputError(`${field}: ${issue.message}`, { details: { field } });
    }
    const value = parsed.data;
    if (value.data === undefined) throw new InvalidInputError(`${where}.data: required`, { details: { field: `${where}.data` } });
    const id = value.id ?? uuidV7(now.getTime());
    const correlationId = value.correlationId ?? headerCorrelationId ?? id;
    const trace = traces.traceFor({ id, topic: value.topic, correlationId });
    const event: GatewayEvent = {
      id,
      source: value.source ?? this.options.defaultSource,
      type: value.type,
      topic: value.topic,
      subject: value.subject ?? null,
      time: now,
      dataContentType: JSON_CONTENT_TYPE,
      data: value.data,
      key: value.key ?? null,
      correlationId,
      causationId: value.causationId ?? null,
      dataSchema: value.dataSchema ?? null,
      traceparent: trace.traceparent,
      tracestate: trace.tracestate,
      extensions: value.extensions && Object.keys(value.extensions).length > 0 ? value.extensions : null,
    };
    const size = encodeEvent(event).byteLength;
    if (size > this.options.maxEventBytes) {
      throw new PayloadTooLargeError(`${where}: event is ${size} bytes, over the limit of ${this.options.maxEventBytes} bytes`, {
        details: { field: `${where}.data`, size, limit: this.options.maxEventBytes },
      });
    }
    return event;
  }
}

/**
 * One PRODUCER span per event (messaging operation `create`: each message gets a creation context
 * of its own, also in a `publishEvents` batch), child of the caller's context, ending when the
 * commit did. The event stores the span's context; the relay's and consumers' spans hang off it.
 */
class PublishSpans implements TraceSource {
  private readonly spans: Span[] = [];
  private readonly parent: Context;

  constructor(
    private readonly tracer: Tracer,
    private readonly system: string,
    incoming: EventTrace | null,
  ) {
    // No caller context: a new trace, unless the embedding application made a span current.
    this.parent = incoming ? remoteContext(incoming.traceparent, incoming.tracestate) : otelContext.active();
  }

  traceFor(event: Pick<GatewayEvent, 'id' | 'topic' | 'correlationId'>): EventTrace {
    const span = this.tracer.startSpan(
      `publish ${event.topic}`,
      { kind: SpanKind.PRODUCER, attributes: messagingAttributes(this.system, 'create', 'publish', event) },
      this.parent,
    );
    this.spans.push(span);
    return traceOfSpan(span);
  }

  end(results: readonly { duplicate: boolean }[] | null, error?: unknown): void {
    this.spans.forEach((span, i) => {
      if (error !== undefined) failSpan(span, error);
      // The outbox kept the first event with this id, and that one's trace context.
      else if (results?.[i]?.duplicate) span.setAttribute('gateway.duplicate', true);
      span.end();
    });
  }
}
