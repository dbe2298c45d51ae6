import { AsyncLocalStorage } from 'node:async_hooks';
import { context as otelContext, SpanKind, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import { ATTR_MESSAGING_CONSUMER_GROUP_NAME, failSpan, messagingAttributes, remoteContext } from '../../tracing/spans.js';
import type { Middleware } from '../middleware.js';

const storage = new AsyncLocalStorage<Context>();

/**
 * The OpenTelemetry context of the delivery being handled (its "process" span current), while
 * spans are exported; undefined otherwise.
 */
export function currentTraceContext(): Context | undefined {
  return storage.getStore();
}

/**
 * A CONSUMER span (messaging operation `process`) around everything the pipeline does with one
 * delivery, child of the trace context the event carries (a new trace when it has none), and
 * current for the handler: `HandlerContext.trace` hands it to function handlers, the webhook
 * handler makes its CLIENT span under it, and instrumentations of the embedding application see
 * it as the active context. The span says how the delivery was settled; a retry or a dead letter
 * marks it failed. Only in the pipeline while spans are exported.
 */
export function tracing(deps: { consumer: string; tracer: Tracer; system: string }): Middleware {
  const { consumer, tracer, system } = deps;
  return (next) => async (delivery) => {
    const { event } = delivery;
    const parent = remoteContext(event.traceparent, event.tracestate);
    const attributes = messagingAttributes(system, 'process', 'process', event);
    attributes[ATTR_MESSAGING_CONSUMER_GROUP_NAME] = consumer;
    attributes['gateway.delivery.attempt'] = delivery.attempt;
    const span = tracer.startSpan(`process ${event.topic}`, { kind: SpanKind.CONSUMER, attributes }, parent);
    const active = trace.setSpan(parent, span);
    try {
      const settlement = await storage.run(active, () => otelContext.with(active, () => next(delivery)));
      span.setAttribute('gateway.settlement', settlement.kind);
      if (settlement.kind !== 'ack') span.setStatus({ code: SpanStatusCode.ERROR, message: settlement.error });
      return settlement;
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  };
}
