import type { Context } from '@opentelemetry/api';
import type { GatewayEvent } from '../../events/event.js';

export interface HandlerContext {
  readonly consumer: string;
  /** 1 on the first delivery. */
  readonly attempt: number;
  /** The event's correlation id, or its own id when it has none. */
  readonly correlationId: string;
  /**
   * While spans are exported: the OpenTelemetry context of this delivery's "process" span, to
   * make the handler's own spans its children (`tracer.startSpan(name, {}, context.trace)`).
   * Undefined otherwise; the event's `traceparent` is there either way.
   */
  readonly trace?: Context | undefined;
}

/**
 * Does a consumer's work for one event. Resolving means done; throwing means failed and the
 * pipeline retries (or dead-letters at once for a `PermanentHandlerError`). Must be safe to run
 * more than once for one event only in the rare case the broker redelivers after a crash before
 * the success was recorded.
 */
export type EventHandler = (event: GatewayEvent, context: HandlerContext) => Promise<void> | void;
