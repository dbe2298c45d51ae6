import type { KafkaMessage, Message } from 'kafkajs';
import { errorMessage } from '../../errors.js';
import { retryUntilDone } from '../../util/retrying.js';
import type { Logger } from '../../util/logger.js';
import type { Delivery, Settlement } from '../broker.js';
import { decodeDelivery, parseAttempt } from '../delivery.js';
import { ATTEMPT_HEADER, traceHeaders } from '../headers.js';
import { deadLetterMessage, describeOrigin, readHeader, retryMessage, type RecordOrigin } from './messages.js';
import { deadLetterTopicOf, retryTopicOf } from './options.js';
import type { KafkaPublisher } from './publisher.js';

/**
 * Turns a durable consumer's records into deliveries and carries out their settlements on Kafka,
 * where a record can only be committed, never "nacked": `ack` needs nothing; `retry` writes a copy
 * to `<consumer>.retry` with the next attempt and a not-before time; `dead-letter` writes a copy to
 * `<consumer>.dlq` with the error. Only once the copy is confirmed (acks=-1) may the original be
 * committed.
 */
export class DeliveryRunner {
  private readonly retryTopic: string;
  private readonly deadLetterTopic: string;

  constructor(
    private readonly consumer: string,
    /** The bound topic: what decoded events belong to, whichever Kafka topic they came from. */
    private readonly topic: string,
    private readonly publisher: KafkaPublisher,
    private readonly logger: Logger,
    /** Aborted when the consumer closes: a copy not written by then is left to redelivery. */
    private readonly closing: AbortSignal,
  ) {
    this.retryTopic = retryTopicOf(consumer);
    this.deadLetterTopic = deadLetterTopicOf(consumer);
  }

  /** The delivery a record makes: its event (or a stand-in for an undecodable one) and attempt. */
  decode(origin: RecordOrigin, message: KafkaMessage): Delivery {
    const attempt = parseAttempt(readHeader(message.headers, ATTEMPT_HEADER));
    const trace = traceHeaders((name) => message.headers?.[name]);
    return decodeDelivery(message.value ?? '', { ...trace, topic: this.topic, attempt, messageId: describeOrigin(origin) });
  }

  /**
   * Resolves true once the settlement is carried out durably, false if the consumer closed first;
   * the record then stays uncommitted and Kafka delivers it again. Never rejects.
   */
  async settle(message: KafkaMessage, origin: RecordOrigin, delivery: Delivery, settlement: Settlement): Promise<boolean> {
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
    const ids = { consumer: this.consumer, eventId: delivery.event.id, origin: describeOrigin(origin), to: topic };
    const written = await retryUntilDone(
      async () => {
        await this.publisher.send(topic, [copy]);
        return true;
      },
      {
        signal: this.closing,
        onError: (error, attempt) => this.logger.warn({ err: error, ...ids, attempt }, `could not write to ${topic}: ${errorMessage(error)}; trying again`),
      },
    );
    if (!written) this.logger.warn(ids, 'consumer closed before its settlement was written; Kafka delivers the message again');
    return written ?? false;
  }
}
