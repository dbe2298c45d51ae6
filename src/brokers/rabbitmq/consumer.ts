import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../util/logger.js';
import type { ConsumerBinding, ConsumerHandle, DeliverySink } from '../broker.js';
import { decodeDelivery, parseAttempt } from '../delivery.js';
import { ATTEMPT_HEADER, traceHeaders } from '../headers.js';
import { RabbitMqAcker } from './ack-batch.js';
import { ChannelPart, type ConnectionLink } from './channel-part.js';
import { settle } from './settlement.js';
import type { Topology } from './topology.js';

/**
 * One attachment of a durable consumer: consumes the durable queue `<consumer>` on a confirm
 * channel of its own with the binding's window as prefetch, hands each message to the sink, and
 * carries out its settlement (see `settle`). The attempt number travels in the gateway's own
 * header, counted up on every trip through a retry queue. Several attachments, in one process or
 * many, share the queue; RabbitMQ hands each message to one of them.
 */
export class DurableConsumer extends ChannelPart<ConfirmChannel> implements ConsumerHandle {
  private consumerTag: string | undefined;

  constructor(
    link: ConnectionLink,
    logger: Logger,
    private readonly topology: Topology,
    private readonly binding: ConsumerBinding,
    private readonly sink: DeliverySink,
  ) {
    super(link, logger.child({ consumer: binding.name, queue: binding.name, topic: binding.topic }));
  }

  /**
   * Messages ready in the consumer's queue, not counting those delivered and not yet settled,
   * nor those waiting out a retry delay in `<consumer>.retry.*` (the `retrying` count shows
   * those). Null while the broker cannot be asked.
   */
  async lag(): Promise<number | null> {
    if (!this.link.current()) return null;
    try {
      const { messageCount } = await this.link.withChannel((channel) => channel.checkQueue(this.binding.name));
      return messageCount;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not read the consumer queue depth');
      return null;
    }
  }

  /**
   * Cancels the consumer, so RabbitMQ sends nothing more, waits for every delivery already
   * received to be settled, then closes the channel; anything left unacknowledged goes back to
   * the queue.
   */
  close(): Promise<void> {
    return this.shutDown(async () => {
      const { channel, consumerTag } = this;
      if (channel && consumerTag) {
        try {
          await channel.cancel(consumerTag);
        } catch (error) {
          // The channel went with its connection: nothing more can arrive anyway.
          this.logger.debug({ err: error }, 'could not cancel the consumer; its channel is closed');
        }
      }
      await this.sink.idle();
      // Acks still gathered for this turn go out before the channel closes.
      if (channel) RabbitMqAcker.of(channel, this.logger).flush();
    });
  }

  protected openChannel(model: ChannelModel): Promise<ConfirmChannel> {
    return model.createConfirmChannel();
  }

  protected async setUp(channel: ConfirmChannel): Promise<void> {
    await channel.prefetch(Math.max(1, this.binding.window));
    await this.topology.declareConsumer(channel, this.binding);
    const { consumerTag } = await channel.consume(this.binding.name, (message) => this.receive(channel, message));
    this.consumerTag = consumerTag;
  }

  private receive(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      this.logger.warn('RabbitMQ cancelled the consumer (was its queue deleted?); declaring the queue again and consuming');
      this.setUpAgain(channel);
      return;
    }
    RabbitMqAcker.of(channel, this.logger).received(message);
    const { headers, messageId } = message.properties;
    const delivery = decodeDelivery(message.content, {
      ...traceHeaders((name) => headers?.[name]),
      topic: this.binding.topic,
      attempt: parseAttempt(headers?.[ATTEMPT_HEADER]),
      messageId: typeof messageId === 'string' ? messageId : undefined,
    });
    this.sink.push({
      ...delivery,
      ids: { queue: this.binding.name, deliveryTag: message.fields.deliveryTag },
      settle: (settlement) => settle(channel, message, delivery, settlement, { consumer: this.binding.name, topology: this.topology, logger: this.logger }),
    });
  }
}
