import { createTraceState, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { errorMessage } from '../errors.js';
import type { GatewayEvent } from '../events/event.js';
import { formatTraceparent, parseTraceparent, type EventTrace } from './trace-context.js';

/*
 * OpenTelemetry messaging semantic conventions (https://opentelemetry.io/docs/specs/semconv/
 * messaging/), still "development" there and so not in the stable entry point of
 * @opentelemetry/semantic-conventions: the names are copied here, as that package advises
 * (tests/tracing checks them against its incubating entry point).
 */
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
export const ATTR_MESSAGING_MESSAGE_CONVERSATION_ID = 'messaging.message.conversation_id';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';

/** The messaging operation a span stands for (`messaging.operation.type`). */
export type MessagingOperation = 'create' | 'send' | 'process';

/** The attributes every messaging span of an event carries. */
export function messagingAttributes(
  system: string,
  operation: MessagingOperation,
  name: string,
  event: Pick<GatewayEvent, 'id' | 'topic' | 'correlationId'>,
): Attributes {
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: system,
    [ATTR_MESSAGING_OPERATION_TYPE]: operation,
    [ATTR_MESSAGING_OPERATION_NAME]: name,
    // The gateway topic: the broker's own name for it (routing key, subject) is the adapter's business.
    [ATTR_MESSAGING_DESTINATION_NAME]: event.topic,
    [ATTR_MESSAGING_MESSAGE_ID]: event.id,
  };
  if (event.correlationId !== null) attributes[ATTR_MESSAGING_MESSAGE_CONVERSATION_ID] = event.correlationId;
  return attributes;
}

/** A context whose parent is the remote span a `traceparent` names; the root context without one. */
export function remoteContext(traceparent: string | null, tracestate: string | null): Context {
  const parent = parseTraceparent(traceparent);
  if (!parent) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.flags,
    isRemote: true,
    ...(tracestate ? { traceState: createTraceState(tracestate) } : {}),
  });
}

/** The trace context to hand on for work done under `span`: its own ids, its trace state. */
export function traceOfSpan(span: Span): EventTrace {
  const context = span.spanContext();
  const tracestate = context.traceState?.serialize();
  return {
    traceparent: formatTraceparent({ traceId: context.traceId, spanId: context.spanId, flags: context.traceFlags }),
    tracestate: tracestate ? tracestate : null,
  };
}

/** Marks a span failed with what went wrong; the caller ends it. */
export function failSpan(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
}
