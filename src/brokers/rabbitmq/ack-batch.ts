import type { Channel, Message } from 'amqplib';
import type { Logger } from '../../util/logger.js';

/** What to send RabbitMQ for the acks gathered since the last flush. */
export interface AckFrames {
  /** `basic.ack` with `multiple`: every delivery up to and including this tag. */
  readonly upTo: number | undefined;
  /** Single `basic.ack`s for deliveries settled beyond the first one still unsettled. */
  readonly single: readonly number[];
}

/**
 * The acks of one channel, gathered and sent as few frames as RabbitMQ allows. Delivery tags grow
 * by one per delivery on a channel. An ack with `multiple` covers every delivery up to its tag, so
 * it may only be sent for a run of settled deliveries from the oldest unsettled one; settled
 * deliveries past a gap go singly, so a slow delivery never holds up the others' acks. Pure and
 * synchronous; `RabbitMqAcker` sends what `flush` says.
 */
export class AckBatch {
  /** Delivery tags received and not yet acked, oldest first. */
  private outstanding: number[] = [];
  private readonly settled = new Set<number>();

  received(tag: number): void {
    this.outstanding.push(tag);
  }

  /** The delivery may be acked. */
  ack(tag: number): void {
    this.settled.add(tag);
  }

  /** The delivery was settled some other way (nacked): it is no longer waiting for an ack. */
  forget(tag: number): void {
    this.settled.delete(tag);
    this.outstanding = this.outstanding.filter((t) => t !== tag);
  }

  /** What to send now; everything it names is no longer outstanding. */
  flush(): AckFrames {
    let head = 0;
    while (head < this.outstanding.length && this.settled.has(this.outstanding[head]!)) this.settled.delete(this.outstanding[head++]!);
    const upTo = head > 0 ? this.outstanding[head - 1] : undefined;
    const single: number[] = [];
    const rest: number[] = [];
    for (let i = head; i < this.outstanding.length; i++) {
      const tag = this.outstanding[i]!;
      if (this.settled.delete(tag)) single.push(tag);
      else rest.push(tag);
    }
    this.outstanding = rest;
    return { upTo, single };
  }
}

/**
 * Sends the acks of one channel at the end of each turn of the event loop, as `AckBatch` words
 * them: under load, one `basic.ack` frame stands for many deliveries.
 */
export class RabbitMqAcker {
  private static readonly byChannel = new WeakMap<Channel, RabbitMqAcker>();
  private readonly batch = new AckBatch();
  private scheduled = false;

  private constructor(
    private readonly channel: Channel,
    private readonly logger: Logger,
  ) {}

  static of(channel: Channel, logger: Logger): RabbitMqAcker {
    let acker = RabbitMqAcker.byChannel.get(channel);
    if (!acker) RabbitMqAcker.byChannel.set(channel, (acker = new RabbitMqAcker(channel, logger)));
    return acker;
  }

  received(message: Message): void {
    this.batch.received(message.fields.deliveryTag);
  }

  ack(message: Message): void {
    this.batch.ack(message.fields.deliveryTag);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Puts the message back in its queue at once (not batched). */
  requeue(message: Message): void {
    this.batch.forget(message.fields.deliveryTag);
    this.channel.nack(message, false, true);
  }

  /** Sends what is gathered now (before the channel closes). */
  flush(): void {
    this.scheduled = false;
    const { upTo, single } = this.batch.flush();
    try {
      if (upTo !== undefined) this.channel.ack(tagged(upTo), true);
      for (const tag of single) this.channel.ack(tagged(tag));
    } catch (error) {
      // The channel went with its connection: RabbitMQ puts the unacknowledged messages back.
      this.logger.debug({ err: error, upTo, single: single.length }, 'could not acknowledge; the channel is closed');
    }
  }
}

/** amqplib reads only the delivery tag of the message it acknowledges. */
const tagged = (deliveryTag: number) => ({ fields: { deliveryTag } }) as Message;
