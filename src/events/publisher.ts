import { z } from 'zod';
import { InvalidInputError, PayloadTooLargeError } from '../errors.js';
import type { OutboxRepository } from '../store/outbox-repository.js';
import { formatPath } from '../util/path.js';
import { uuidV7 } from '../util/uuid-v7.js';
import { encodeEvent } from './codec.js';
import {
  causationIdSchema,
  correlationIdSchema,
  eventIdSchema,
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
});

/** Checked against `publishEventInputSchema`; `data` is required at run time (any JSON, null included). */
export type PublishEventInput = Omit<z.input<typeof publishEventInputSchema>, 'data'> & { readonly data?: unknown };

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

/**
 * The write side of the API: turns inputs into events and writes them to the outbox in one
 * transaction. Nothing reaches the broker from here; the relay does that after the commit.
 */
export class EventPublisher {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly options: EventPublisherOptions,
  ) {}

  /**
   * Validates every input, then writes all events or none, resolving once the commit is durable.
   * A client-chosen id that is already in the outbox makes that event a duplicate: nothing is
   * written for it and the first event is returned.
   */
  async publish(inputs: readonly PublishEventInput[], context: { correlationId?: string | null } = {}): Promise<PublishOutcome[]> {
    const now = new Date();
    // An empty header (some proxies send one) is no header; one no input falls back to is not checked.
    const headerCorrelationId = context.correlationId || null;
    if (headerCorrelationId !== null && inputs.some((input) => input.correlationId == null)) {
      const checked = correlationIdSchema.safeParse(headerCorrelationId);
      if (!checked.success) {
        throw new InvalidInputError(`x-correlation-id header: ${checked.error.issues[0]!.message}`, { details: { field: 'x-correlation-id' } });
      }
    }
    const events = inputs.map((input, index) => this.toEvent(input, now, headerCorrelationId, inputs.length > 1 ? index : null));
    // `append` answers in the order of `events`; concurrent mutations share its commit.
    const results = await this.outbox.append(events);
    return results.map(({ id, duplicate, event }) => ({ event, outboxId: id, duplicate }));
  }

  private toEvent(input: PublishEventInput, now: Date, headerCorrelationId: string | null, index: number | null): GatewayEvent {
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
      correlationId: value.correlationId ?? headerCorrelationId ?? id,
      causationId: value.causationId ?? null,
    };
    const size = encodeEvent(event).byteLength;
    if (size > this.options.maxEventBytes) {
      throw new PayloadTooLargeError(
        `${where}: event is ${size} bytes, over the limit of ${this.options.maxEventBytes} bytes`,
        { details: { field: `${where}.data`, size, limit: this.options.maxEventBytes } },
      );
    }
    return event;
  }
}
