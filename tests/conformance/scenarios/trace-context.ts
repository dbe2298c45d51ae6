import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { expect } from 'vitest';
import { ATTR_MESSAGING_MESSAGE_ID } from '../../../src/tracing/spans.js';
import { parseTraceparent, randomSpanId, randomTraceId } from '../../../src/tracing/trace-context.js';
import { uniqueName, waitFor } from '../../helpers/events.js';
import { WebhookRecorder } from '../../helpers/webhook-recorder.js';
import { watchSubscriptions } from '../live-topics.js';
import type { Scenario, ScenarioContext, TestApp } from '../scenario.js';
import type { BrokerTarget } from '../../targets/target.js';
import { publishEvent, subscribeToEvents, webhookConsumer, type EventView } from './graphql-client.js';

/** A caller's W3C trace context, as an instrumented client sends it with the mutation. */
function callerTrace() {
  const traceId = randomTraceId();
  const spanId = randomSpanId();
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01`, tracestate: `vendor=${spanId}` };
}

/**
 * A gateway on the target with a webhook consumer and a live GraphQL subscriber of a new topic:
 * the three places an event's trace context must reach.
 */
async function tracedGateway(target: BrokerTarget, context: ScenarioContext, options: Parameters<ScenarioContext['gateway']>[0] = {}) {
  const topic = uniqueName('conf');
  const receiver = await WebhookRecorder.start({ keepRequests: true });
  context.defer(() => receiver.close());
  const watched = watchSubscriptions(target.create());
  const app: TestApp = await context.gateway({ ...options, broker: watched.broker, consumers: [webhookConsumer(uniqueName('traced'), topic, receiver.url)] });
  const subscriber = subscribeToEvents(app, topic, context);
  await watched.live(topic, context.T);
  /** The request headers the webhook got for an event, once it got it. */
  const webhookHeaders = async (id: string) => {
    await receiver.waitForAll([id], context.T, `the webhook call for ${id}`);
    return receiver.requests.find((request) => request.eventId === id)!.headers;
  };
  /** What the GraphQL subscriber received of an event. */
  const seenBySubscriber = (id: string) => waitFor(() => subscriber.received.find((r) => r.events.id === id)?.events, context.T, `the subscriber to get ${id}`);
  return { topic, app, webhookHeaders, seenBySubscriber };
}

const traceIdOf = (event: EventView) => event.trace?.traceId;
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
const spanIdOf = (span: ReadableSpan) => span.spanContext().spanId;

/** Trace context from the mutation through the outbox, the broker and the consumer to the webhook. */
export const traceContextScenarios: readonly Scenario[] = [
  {
    name: "carries the caller's trace context through the outbox to subscribers and webhooks, and starts one for a caller without",
    async run(target, context) {
      const { topic, app, webhookHeaders, seenBySubscriber } = await tracedGateway(target, context);
      const caller = callerTrace();
      const traced = await publishEvent(
        app,
        { topic, type: 'item.created', data: { n: 1 } },
        { traceparent: caller.traceparent, tracestate: caller.tracestate },
      );
      const untraced = await publishEvent(app, { topic, type: 'item.created', data: { n: 2 } });

      // Exporting no spans, the gateway is a pass-through hop (W3C): the caller's context as it came.
      expect(traced.trace).toMatchObject({ traceId: caller.traceId, spanId: caller.spanId, traceparent: caller.traceparent, tracestate: caller.tracestate });
      const started = parseTraceparent(untraced.trace?.traceparent);
      expect(started, 'a new, valid traceparent').not.toBeNull();
      expect(started!.traceId).not.toBe(caller.traceId);
      expect(untraced.trace?.tracestate).toBeNull();

      for (const event of [traced, untraced]) {
        expect((await seenBySubscriber(event.id)).trace).toEqual(event.trace);
        const headers = await webhookHeaders(event.id);
        expect(headers['traceparent']).toBe(event.trace!.traceparent);
        expect(headers['tracestate']).toBe(event.trace!.tracestate ?? undefined);
      }
    },
  },
  {
    name: 'exports publish, relay, process and webhook spans in the caller’s trace when spans are exported',
    async run(target, context) {
      const exporter = new InMemorySpanExporter();
      const { topic, app, webhookHeaders, seenBySubscriber } = await tracedGateway(target, context, {
        tracing: { spanProcessors: [new SimpleSpanProcessor(exporter)] },
      });
      const caller = callerTrace();
      const traced = await publishEvent(
        app,
        { topic, type: 'item.created', data: { n: 1 } },
        { traceparent: caller.traceparent, tracestate: caller.tracestate },
      );
      const untraced = await publishEvent(app, { topic, type: 'item.created', data: { n: 2 } });

      // The stored context is the gateway's "publish" span: the caller's trace, a span id of its own.
      expect(traceIdOf(traced)).toBe(caller.traceId);
      expect(traced.trace!.spanId).not.toBe(caller.spanId);
      expect(traced.trace!.tracestate).toBe(caller.tracestate);
      expect(traceIdOf(untraced)).not.toBe(caller.traceId);
      expect(parseTraceparent(untraced.trace?.traceparent)).not.toBeNull();

      for (const event of [traced, untraced]) {
        expect((await seenBySubscriber(event.id)).trace).toEqual(event.trace);
        const traceId = traceIdOf(event)!;
        const headers = await webhookHeaders(event.id);
        expect(parseTraceparent(headers['traceparent'])?.traceId).toBe(traceId);

        const ofEvent = (span: ReadableSpan) => span.attributes[ATTR_MESSAGING_MESSAGE_ID] === event.id;
        const spans = await waitFor(
          () => {
            const finished = exporter.getFinishedSpans();
            const post = finished.find((span) => span.name === 'POST' && span.spanContext().traceId === traceId);
            // `process` ends after the POST it wraps returned: wait for it too.
            const done = post && [`relay ${topic}`, `process ${topic}`].every((name) => finished.some((span) => span.name === name && ofEvent(span)));
            return done ? finished : undefined;
          },
          context.T,
          `the spans of ${event.id}`,
        );
        const publish = spans.find((span) => span.name === `publish ${topic}` && ofEvent(span))!;
        const relays = spans.filter((span) => span.name === `relay ${topic}` && ofEvent(span));
        const process = spans.find((span) => span.name === `process ${topic}` && ofEvent(span))!;
        const post = spans.find((span) => span.name === 'POST' && span.spanContext().traceId === traceId)!;
        expect(publish.kind).toBe(SpanKind.PRODUCER);
        expect(process.kind).toBe(SpanKind.CONSUMER);
        expect(post.kind).toBe(SpanKind.CLIENT);
        for (const span of [publish, ...relays, process, post]) expect(span.spanContext().traceId).toBe(traceId);

        // publish ← relay (each attempt) and publish ← process ← POST; the webhook gets POST's context.
        expect(spanIdOf(publish)).toBe(event.trace!.spanId);
        expect(parentOf(publish)).toBe(event === traced ? caller.spanId : undefined);
        for (const relay of relays) expect(parentOf(relay)).toBe(spanIdOf(publish));
        expect(parentOf(process)).toBe(spanIdOf(publish));
        expect(parentOf(post)).toBe(spanIdOf(process));
        expect(parseTraceparent(headers['traceparent'])?.spanId).toBe(spanIdOf(post));
        expect(headers['tracestate']).toBe(event.trace!.tracestate ?? undefined);
      }
    },
  },
];
