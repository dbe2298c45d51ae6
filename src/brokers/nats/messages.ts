import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { CLOUDEVENTS_CONTENT_TYPE } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Delivery } from '../broker.js';
import { decodeDelivery } from '../delivery.js';
import { cloudEventHeaders, traceHeaders } from '../headers.js';

/** JetStream drops a message whose id it stored within the stream's duplicate window. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/**
 * Headers of an event on NATS: the CloudEvents attributes as `ce-` headers (the NATS protocol
 * binding), so tools can route and filter without parsing the structured JSON body, which stays
 * the source of truth; `content-type`; and `Nats-Msg-Id` = event id, unless `dedupe` is false
 * (a replay must not be dropped as a duplicate of the original publish).
 */
export function eventHeaders(event: GatewayEvent, options: { dedupe: boolean }): MsgHdrs {
  const result = headers();
  for (const [name, value] of Object.entries(cloudEventHeaders(event, 'ce-'))) result.set(name, value);
  result.set('content-type', CLOUDEVENTS_CONTENT_TYPE);
  if (options.dedupe) result.set(MSG_ID_HEADER, event.id);
  return result;
}

/** What the adapter reads from a NATS or JetStream message. */
interface ReceivedMessage {
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs | undefined;
}

/**
 * A delivery from a message. An undecodable body becomes an `invalid` delivery whose id is the
 * message's `Nats-Msg-Id`, else `fallbackId` (e.g. stream and sequence), so the dead letter
 * points back at the message.
 */
export function toDelivery(message: ReceivedMessage, context: { topic: string; attempt: number; fallbackId?: string }): Delivery {
  const messageId = message.headers?.get(MSG_ID_HEADER) || context.fallbackId;
  const trace = traceHeaders((name) => message.headers?.get(name) || undefined);
  return decodeDelivery(message.data, { ...trace, topic: context.topic, attempt: context.attempt, messageId });
}
