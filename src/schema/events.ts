import { target } from '../auth/scopes.js';
import { topicSchema, type GatewayEvent } from '../events/event.js';
import { publishEventInputSchema, type PublishOutcome } from '../events/publisher.js';
import { AUTHORIZE_ONLY } from '../subscriptions/subscription-groups.js';
import type { DeliveredEvent } from '../subscriptions/subscription-hub.js';
import { parseTraceparent, SAMPLED, type TraceParent } from '../tracing/trace-context.js';
import { builder } from './builder.js';

/** An event as resolvers see it; one delivered by a subscription also has its cursor. */
export type EventShape = GatewayEvent & { readonly cursor?: string | null };

/** What the authorizing dry run of a subscription returns: a stream that never yields. */
const NOTHING: AsyncIterable<never> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined as never }) }) };

type TraceContextShape = TraceParent & { readonly traceparent: string; readonly tracestate: string | null };

const TraceContextRef = builder.objectRef<TraceContextShape>('TraceContext').implement({
  description: 'A W3C trace context (https://www.w3.org/TR/trace-context/).',
  fields: (t) => ({
    traceId: t.exposeString('traceId', { description: 'The trace, 32 hex digits: search for it in the tracing backend.' }),
    spanId: t.exposeString('spanId', { description: 'The span that produced the event (with tracing on, the gateway’s "publish" span), 16 hex digits.' }),
    sampled: t.boolean({ description: 'Whether the producer sampled (recorded) the trace.', resolve: (c) => (c.flags & SAMPLED) !== 0 }),
    traceparent: t.exposeString('traceparent', { description: 'The `traceparent` as stored and sent on.' }),
    tracestate: t.exposeString('tracestate', { nullable: true }),
  }),
});

export const EventRef = builder.objectRef<EventShape>('Event').implement({
  description: 'A CloudEvents 1.0 event as the gateway carries it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'CloudEvents `id`: unique per source; the idempotency key.' }),
    source: t.exposeString('source'),
    type: t.exposeString('type', { description: 'Event type, e.g. `order.created`.' }),
    topic: t.exposeString('topic', { description: 'Gateway topic (the stream this event belongs to).' }),
    subject: t.exposeString('subject', { nullable: true }),
    time: t.expose('time', { type: 'DateTime' }),
    dataContentType: t.exposeString('dataContentType'),
    data: t.expose('data', { type: 'JSON', nullable: true }),
    key: t.exposeString('key', { nullable: true, description: 'Partition key: events with one key keep their order.' }),
    correlationId: t.exposeString('correlationId', { nullable: true }),
    causationId: t.exposeString('causationId', { nullable: true }),
    dataSchema: t.exposeString('dataSchema', { nullable: true, description: 'CloudEvents `dataschema`: the URI of the schema `data` adheres to.' }),
    extensions: t.expose('extensions', {
      type: 'JSON',
      nullable: true,
      description:
        'Other CloudEvents extension attributes of the event, by name (`{ "tenant": "acme", "priority": 2 }`): those given at publish, or those a producer put on the broker. Null when there are none.',
    }),
    trace: t.field({
      type: TraceContextRef,
      nullable: true,
      description:
        'The W3C trace context stored with the event (CloudEvents distributed-tracing extension): where to find, in a tracing backend, the work that produced it. Null for an event that came without one.',
      resolve: (event) => {
        const parent = parseTraceparent(event.traceparent);
        return parent && { ...parent, traceparent: event.traceparent!, tracestate: event.tracestate };
      },
    }),
    cursor: t.string({
      nullable: true,
      description:
        'Where this event sits in the broker log, for `events(after:)` to resume after it (opaque; SSE sends it as the event `id`). Null outside a subscription, and on a broker that keeps no positions.',
      resolve: (event) => event.cursor ?? null,
    }),
  }),
});

const PublishEventInput = builder.inputType('PublishEventInput', {
  fields: (t) => ({
    topic: t.string({ required: true, description: 'Gateway topic: letters, digits, `_` or `-`.' }),
    type: t.string({ required: true, description: 'Event type, dot-separated words (`order.created`).' }),
    data: t.field({ type: 'JSON', required: true, description: 'The event payload (any JSON).' }),
    id: t.id({ description: 'Your event id. Publishing the same id again writes nothing and returns the first event.' }),
    source: t.string({ description: 'CloudEvents `source`; defaults to the gateway’s EVENT_SOURCE.' }),
    subject: t.string(),
    key: t.string({ description: 'Partition key; events with the same key are delivered in order.' }),
    correlationId: t.string({ description: 'Defaults to the `x-correlation-id` request header, else the event id.' }),
    causationId: t.string({ description: 'Id of the event that caused this one.' }),
    dataSchema: t.string({ description: 'CloudEvents `dataschema`: an absolute URI of the schema `data` adheres to.' }),
    extensions: t.field({
      type: 'JSON',
      description:
        'CloudEvents extension attributes to add, as an object: names of lowercase letters and digits (at most 20), values strings, integers or booleans. Names the event already has a field for (`topic`, `partitionkey`, `traceparent`, …) are refused.',
    }),
  }),
  validate: publishEventInputSchema,
});

const PublishEventPayload = builder.objectRef<PublishOutcome>('PublishEventPayload').implement({
  fields: (t) => ({
    event: t.field({ type: EventRef, resolve: (p) => p.event }),
    outboxId: t.id({ resolve: (p) => String(p.outboxId) }),
    duplicate: t.exposeBoolean('duplicate', {
      description: 'True when an event with this id had already been published; nothing new was written.',
    }),
  }),
});

builder.mutationFields((t) => ({
  publishEvent: t.field({
    type: PublishEventPayload,
    description: 'Writes one event to the outbox in one transaction; the relay then publishes it. Needs `publish:<topic>.<type>`.',
    args: { input: t.arg({ type: PublishEventInput, required: true }) },
    authScopes: (_, { input }) => ({ publish: [target(input.topic, input.type)] }),
    resolve: async (_, { input }, ctx) => (await ctx.services.publisher.publish([input], ctx))[0]!,
  }),
  publishEvents: t.field({
    type: [PublishEventPayload],
    description: 'Writes several events in one transaction: all of them or none. Needs `publish:` for each.',
    args: { inputs: t.arg({ type: [PublishEventInput], required: true }) },
    authScopes: (_, { inputs }) => ({ publish: inputs.map((input) => target(input.topic, input.type)) }),
    resolve: (_, { inputs }, ctx) => ctx.services.publisher.publish(inputs, ctx),
  }),
}));

builder.subscriptionFields((t) => ({
  events: t.field({
    type: EventRef,
    description:
      "Live events of a topic as the broker delivers them, optionally only some types; with `after` (an event's `cursor`), the events after it first, then live ones, nothing missed or repeated (`CURSOR_EXPIRED` when the broker no longer keeps them). Needs `subscribe:<topic>.*`, or `subscribe:<topic>.<type>` for each listed type.",
    args: {
      topic: t.arg.string({ required: true, validate: topicSchema }),
      types: t.arg.stringList(),
      after: t.arg.string({ description: 'Resume after this cursor.' }),
    },
    authScopes: (_, { topic, types }) => ({
      subscribe: types?.length ? types.map((type) => target(topic, type)) : [target(topic)],
    }),
    subscribe: (_, { topic, types, after }, ctx) =>
      (ctx as { [AUTHORIZE_ONLY]?: boolean })[AUTHORIZE_ONLY] ? NOTHING : ctx.services.hub.subscribe(topic, { types, after }),
    resolve: (delivered: DeliveredEvent): EventShape => ({ ...delivered.event, cursor: delivered.cursor }),
  }),
}));
