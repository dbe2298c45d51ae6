import type { JetStreamClient } from '@nats-io/jetstream';
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { BrokerUnavailableError, errorMessage, PayloadTooLargeError, PublishError, type GatewayError } from '../../errors.js';
import { encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import { within } from '../../util/retrying.js';
import { eventHeaders } from './messages.js';
import { eventSubject } from './subjects.js';

/**
 * Publishes a batch to JetStream, all events at once, and resolves when every PubAck arrived. A
 * PubAck marked `duplicate` is a success: the stream already holds that event id. Events without
 * a PubAck (timeout, no responders, a stream error) are listed in the `PublishError`.
 */
export async function publishToJetStream(
  js: JetStreamClient,
  events: readonly GatewayEvent[],
  options: { timeoutMs: number; stream: string; logger: Logger },
): Promise<void> {
  const results = await Promise.allSettled(
    events.map((event) => js.publish(eventSubject(event), encodeEvent(event), { headers: eventHeaders(event, { dedupe: true }), timeout: options.timeoutMs })),
  );
  const failures = new Map<string, Error>();
  results.forEach((result, i) => {
    const event = events[i]!;
    if (result.status === 'rejected') failures.set(event.id, publishFailure(event, result.reason, 'no JetStream PubAck'));
    else if (result.value.duplicate) options.logger.debug({ eventId: event.id, seq: result.value.seq }, 'NATS already held this event id');
    else if (result.value.stream !== options.stream) {
      options.logger.warn({ eventId: event.id, stream: result.value.stream, expected: options.stream }, 'event stored by another stream');
    }
  });
  PublishError.throwIfAny(failures, events.length, 'NATS JetStream');
}

/**
 * Core mode: publishes every event, then waits for the server to answer a flush, which proves it
 * received them (not that anyone did: core NATS keeps nothing). A failed flush fails the batch.
 */
export async function publishToCore(nc: NatsConnection, events: readonly GatewayEvent[], options: { timeoutMs: number }): Promise<void> {
  const failures = new Map<string, Error>();
  const sent: GatewayEvent[] = [];
  for (const event of events) {
    try {
      nc.publish(eventSubject(event), encodeEvent(event), { headers: eventHeaders(event, { dedupe: true }) });
      sent.push(event);
    } catch (error) {
      failures.set(event.id, publishFailure(event, error, 'not sent'));
    }
  }
  if (sent.length > 0) {
    try {
      if (!(await within(nc.flush(), options.timeoutMs))) throw new natsErrors.TimeoutError();
    } catch (error) {
      for (const event of sent) failures.set(event.id, publishFailure(event, error, 'the server did not confirm the flush'));
    }
  }
  PublishError.throwIfAny(failures, events.length, 'NATS');
}

function publishFailure(event: GatewayEvent, error: unknown, what: string): GatewayError {
  const message = `event ${event.id} to ${eventSubject(event)}: ${what}: ${errorMessage(error)}`;
  // A message over the server's max_payload will never fit: the relay marks it FAILED.
  if (error instanceof natsErrors.InvalidArgumentError && errorMessage(error).includes('max_payload')) {
    return new PayloadTooLargeError(message, { cause: error });
  }
  return new BrokerUnavailableError(message, { cause: error });
}
