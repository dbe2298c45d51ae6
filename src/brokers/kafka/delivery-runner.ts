import type { KafkaMessage, Message } from 'kafkajs';
import { errorMessage } from '../../errors.js';
import { backoffDelay, sleep, type BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { Delivery, DeliveryHandler, Settlement } from '../broker.js';
import { decodeDelivery, parseAttempt } from '../delivery.js';
import { ATTEMPT_HEADER } from '../headers.js';
import { deadLetterMessage, describeOrigin, readHeader, retryMessage, type RecordOrigin } from './messages.js';
import { deadLetterTopicOf, retryTopicOf } from './options.js';
import type { KafkaPublisher } from './publisher.js';

/** Delay before redelivering a message whose handler threw instead of returning a settlement. */
const HANDLER_THREW_RETRY_MS = 1000;

/** Pause between attempts to write a retry or dead-letter copy while Kafka does not take it. */
const FORWARD_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000, multiplier: 2, jitter: 0.2 };

/**
 * Runs one delivery of a durable consumer: decodes the record, calls the handler, and carries out
 * its settlement on Kafka, where a record can only be committed, never "nacked": `ack` needs
 * nothing; `retry` writes a copy to `<consumer>.retry` with the next attempt and a not-before
 * time; `dead-letter` writes a copy to `<consumer>.dlq` with the error. Only once the copy is
 * confirmed (acks=-1) may the original be committed.
 */
export class DeliveryRunner {
  private readonly retryTopic: string;
  private readonly deadLetterTopic: string;

  constructor(
    private readonly consumer: string,
    /** The bound topic: what decoded events belong to, whichever Kafka topic they came from. */
    private readonly topic: string,
    private readonly handler: DeliveryHandler,
    private readonly publisher: KafkaPublisher,
    private readonly logger: Logger,
    /** Aborted when the consumer closes: a copy not written by then is left to redelivery. */
    private readonly closing: AbortSignal,
  ) {
    this.retryTopic = retryTopicOf(consumer);
    this.deadLetterTopic = deadLetterTopicOf(consumer);
  }

  /**
   * Resolves true once the delivery is settled durably, false if the consumer closed first; the
   * record then stays uncommitted and Kafka delivers it again. Never rejects.
   */
  async run(origin: RecordOrigin, message: KafkaMessage): Promise<boolean> {
    const attempt = parseAttempt(readHeader(message.headers, ATTEMPT_HEADER));
    const delivery = decodeDelivery(message.value ?? '', { topic: this.topic, attempt, messageId: describeOrigin(origin) });
    let settlement: Settlement;
    try {
      settlement = await this.handler(delivery);
    } catch (error) {
      this.logger.warn({ err: error, eventId: delivery.event.id, origin: describeOrigin(origin), attempt }, 'delivery handler threw; retrying');
      settlement = { kind: 'retry', delayMs: HANDLER_THREW_RETRY_MS, error: errorMessage(error) };
    }
    return this.settle(message, origin, delivery, settlement);
  }

  private async settle(message: KafkaMessage, origin: RecordOrigin, delivery: Delivery, settlement: Settlement): Promise<boolean> {
    const { consumer } = this;
    switch (settlement.kind) {
      case 'ack':
        return true;
      case 'retry': {
        const notBefore = Date.now() + Math.max(0, settlement.delayMs);
        const copy = retryMessage(message, { origin, consumer, attempt: delivery.attempt + 1, notBefore, error: settlement.error });
        return this.write(this.retryTopic, copy, origin, delivery);
      }
      case 'dead-letter': {
        const copy = deadLetterMessage(message, { origin, consumer, attempts: delivery.attempt, error: settlement.error });
        return this.write(this.deadLetterTopic, copy, origin, delivery);
      }
    }
  }

  private async write(topic: string, copy: Message, origin: RecordOrigin, delivery: Delivery): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.publisher.send(topic, [copy]);
        return true;
      } catch (error) {
        const ids = { consumer: this.consumer, eventId: delivery.event.id, origin: describeOrigin(origin), to: topic, attempt };
        if (this.closing.aborted) {
          this.logger.warn({ err: error, ...ids }, 'consumer closed before its settlement was written; Kafka delivers the message again');
          return false;
        }
        this.logger.warn({ err: error, ...ids }, `could not write to ${topic}: ${errorMessage(error)}; trying again`);
        await sleep(backoffDelay(FORWARD_BACKOFF, attempt), this.closing);
      }
    }
  }
}
