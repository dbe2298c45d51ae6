import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { Delivery, Settlement } from '../broker.js';
import { ATTEMPT_HEADER, CONSUMER_HEADER, ERROR_HEADER, errorHeaderValue } from '../headers.js';
import { RabbitMqAcker } from './ack-batch.js';
import { ConfirmedSender } from './confirms.js';
import { forwardedProperties } from './message.js';
import { retryBucket, type Topology } from './topology.js';

/**
 * How long a delivery whose settlement failed (its retry or dead-letter copy was not confirmed)
 * is held before it goes back to the queue, so a broken retry path cannot spin the handler.
 */
const REQUEUE_AFTER_FAILURE_MS = 1000;

export interface SettleContext {
  readonly consumer: string;
  readonly topology: Topology;
  readonly logger: Logger;
}

/**
 * Carries out a handler's settlement on the channel the message came from. A retry or a dead
 * letter is a copy sent (and confirmed) to `<consumer>.retry.<bucket>` or `<consumer>.dlq` first;
 * only then is the original acknowledged, so a crash in between leaves a duplicate, never a loss.
 * Acks of one channel go out together at the end of the turn of the event loop (`RabbitMqAcker`).
 * Never throws: a failed settlement is logged and the message goes back to the queue.
 */
export async function settle(
  channel: ConfirmChannel,
  message: ConsumeMessage,
  delivery: Delivery,
  settlement: Settlement,
  context: SettleContext,
): Promise<void> {
  const acker = RabbitMqAcker.of(channel, context.logger);
  try {
    if (settlement.kind === 'retry') await sendToRetry(channel, message, delivery, settlement, context);
    else if (settlement.kind === 'dead-letter') await sendToDeadLetterQueue(channel, message, delivery, settlement.error, context);
    acker.ack(message);
  } catch (error) {
    context.topology.forget(channel);
    context.logger.error(
      { err: error, eventId: delivery.event.id, attempt: delivery.attempt, settlement: settlement.kind, queue: context.consumer },
      'could not settle a delivery; it goes back to the queue',
    );
    await sleep(REQUEUE_AFTER_FAILURE_MS);
    try {
      acker.requeue(message);
    } catch (nackError) {
      // The channel is gone, and with it the delivery: RabbitMQ has put the message back already.
      context.logger.debug({ err: nackError, eventId: delivery.event.id }, 'channel closed before the delivery was settled');
    }
  }
}

/**
 * A copy waits in the retry queue of its delay's bucket, expires after `delayMs` and is
 * dead-lettered by RabbitMQ straight back into the consumer's queue, with the attempt counted up.
 */
async function sendToRetry(
  channel: ConfirmChannel,
  message: ConsumeMessage,
  delivery: Delivery,
  settlement: Extract<Settlement, { kind: 'retry' }>,
  { consumer, topology }: SettleContext,
): Promise<void> {
  const delayMs = Math.max(0, Math.round(settlement.delayMs));
  const queue = await topology.declareRetryQueue(channel, consumer, retryBucket(delayMs));
  const properties = forwardedProperties(message, delivery.event.id, {
    [ATTEMPT_HEADER]: delivery.attempt + 1,
    [ERROR_HEADER]: errorHeaderValue(settlement.error),
  });
  await ConfirmedSender.of(channel).send('', queue, message.content, { ...properties, expiration: String(delayMs) });
}

async function sendToDeadLetterQueue(
  channel: ConfirmChannel,
  message: ConsumeMessage,
  delivery: Delivery,
  error: string,
  { consumer, topology }: SettleContext,
): Promise<void> {
  const queue = await topology.declareDeadLetterQueue(channel, consumer);
  const properties = forwardedProperties(message, delivery.event.id, {
    [ATTEMPT_HEADER]: delivery.attempt,
    [ERROR_HEADER]: errorHeaderValue(error),
    [CONSUMER_HEADER]: consumer,
  });
  await ConfirmedSender.of(channel).send('', queue, message.content, properties);
}
