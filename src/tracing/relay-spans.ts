import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import type { GatewayEvent } from '../events/event.js';
import { messagingAttributes, remoteContext } from './spans.js';
import type { Tracing } from './tracing.js';

/**
 * The relay's spans for one broker publish: one PRODUCER span per event (messaging operation
 * `send`), each a child of the context stored with its event. Per event rather than one per batch
 * with links: a batch span could sit in the trace of at most one of its events, while a child per
 * event puts the relay hop into every event's own trace, between the mutation's "publish" span and
 * the consumers' "process" spans. Consumers stay children of the stored (creation) context, as the
 * messaging conventions ask, so a retried publish or a broker redelivery never re-parents them.
 */
export class RelaySpans {
  private constructor(private readonly spans: readonly Span[]) {}

  /** Undefined, and nothing made, while spans are not exported. */
  static start(tracing: Tracing | undefined, events: readonly GatewayEvent[], rows: readonly { readonly attempts: number }[]): RelaySpans | undefined {
    const tracer = tracing?.tracer;
    if (!tracer) return undefined;
    return new RelaySpans(
      events.map((event, i) => {
        const attributes = messagingAttributes(tracing.system, 'send', 'relay', event);
        // Failed publishes so far, plus this one.
        attributes['gateway.outbox.attempt'] = (rows[i]?.attempts ?? 0) + 1;
        return tracer.startSpan(`relay ${event.topic}`, { kind: SpanKind.PRODUCER, attributes }, remoteContext(event.traceparent, event.tracestate));
      }),
    );
  }

  /** Ends every span: all confirmed when `outcomes` is absent, else each as its outcome says. */
  end(outcomes?: readonly ({ readonly ok: true } | { readonly ok: false; readonly error: string })[]): void {
    this.spans.forEach((span, i) => {
      const outcome = outcomes?.[i];
      if (outcome && !outcome.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
      span.end();
    });
  }
}
