import kafkajs, { type Kafka, type Message, type Producer } from 'kafkajs';
import { BrokerUnavailableError } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import type { ConnectionMonitor } from './connection-monitor.js';
import { isRejectedMessage } from './errors.js';
import { compressionType, requestRetry } from './kafka-client.js';
import type { ResolvedKafkaOptions } from './options.js';

const { Partitioners } = kafkajs;

interface ProducerEntry {
  readonly producer: Producer;
  readonly ready: Promise<void>;
  sending: number;
  retired: boolean;
}

/**
 * The broker's one Kafka producer: idempotent, acks=-1 (every in-sync replica), compression from
 * the options. Used for published events and for a consumer's retry and dead-letter copies.
 *
 * kafkajs limits: its idempotent producer needs `maxInFlightRequests: 1` (it serialises requests
 * per broker and tracks sequence numbers itself) and only dedupes its own retries of one request.
 * When a send fails after its retries, kafkajs rolls the sequence numbers back although Kafka may
 * have appended the batch; the next, different batch would then reuse those numbers and Kafka
 * would drop it as a duplicate. So a failed producer is retired and the next send gets a new one
 * (a new producer id): a failure costs a possible duplicate, never a silently dropped event.
 */
export class KafkaPublisher {
  private current: ProducerEntry | undefined;
  private readonly sends = new Set<Promise<void>>();
  private readonly disconnecting = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: ResolvedKafkaOptions,
    private readonly monitor: ConnectionMonitor,
    private readonly logger: Logger,
  ) {}

  /** Connects the producer (and gets its producer id). Rejects with the kafkajs error. */
  async start(): Promise<void> {
    await this.producer();
  }

  /**
   * Sends records to one topic; resolves once Kafka acknowledged all of them (acks=-1). Rejects
   * with the kafkajs error; a send that failed may still have been written (see the class note).
   */
  send(topic: string, messages: Message[]): Promise<void> {
    if (this.closed) return Promise.reject(new BrokerUnavailableError('the Kafka broker connection is closed'));
    const sending = this.sendWithProducer(topic, messages);
    this.sends.add(sending);
    const forget = () => void this.sends.delete(sending);
    sending.then(forget, forget);
    return sending;
  }

  /** Waits for sends in flight to be confirmed or failed, then disconnects every producer. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.sends]);
    if (this.current) this.retire(this.current);
    await Promise.allSettled([...this.disconnecting]);
  }

  private async sendWithProducer(topic: string, messages: Message[]): Promise<void> {
    let entry = await this.producer();
    // Another send may have failed and retired this producer while we waited for it to connect.
    while (entry.retired) entry = await this.producer();
    entry.sending++;
    try {
      await entry.producer.send({ topic, messages, acks: -1, compression: compressionType(this.options.compression) });
      this.monitor.up();
    } catch (error) {
      if (isRejectedMessage(error)) {
        this.monitor.note(error);
      } else {
        this.monitor.failed(error, { topic });
        this.retire(entry);
      }
      throw error;
    } finally {
      entry.sending--;
      if (entry.retired && entry.sending === 0) this.disconnect(entry);
    }
  }

  private async producer(): Promise<ProducerEntry> {
    if (!this.current) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // Java-compatible murmur2: a key lands on the partition Java clients would pick too.
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: requestRetry(this.options),
      });
      const entry: ProducerEntry = { producer, ready: producer.connect(), sending: 0, retired: false };
      this.current = entry;
      entry.ready.then(
        () => this.monitor.up(),
        (error: unknown) => {
          this.monitor.failed(error);
          this.retire(entry);
        },
      );
    }
    const entry = this.current;
    await entry.ready;
    return entry;
  }

  /** Stops using `entry` for new sends; it disconnects once its sends in flight have ended. */
  private retire(entry: ProducerEntry): void {
    if (this.current === entry) this.current = undefined;
    if (entry.retired) return;
    entry.retired = true;
    if (entry.sending === 0) this.disconnect(entry);
  }

  private disconnect(entry: ProducerEntry): void {
    const done = entry.producer
      .disconnect()
      .catch((error: unknown) => this.logger.debug({ err: error }, 'kafka producer disconnect failed'))
      .finally(() => this.disconnecting.delete(done));
    this.disconnecting.add(done);
  }
}
