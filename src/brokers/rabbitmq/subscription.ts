import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import type { Subscription } from '../broker.js';
import { deliverToSubscriber } from '../delivery.js';
import { ChannelPart, type ConnectionLink } from './channel-part.js';
import type { Topology } from './topology.js';

/**
 * Ephemeral fan-out of one topic: an exclusive, auto-delete, server-named queue bound with
 * `<topic>.#`, consumed without acknowledgements (at most once, as the contract asks). The queue
 * lives exactly as long as this subscription's channel; after a reconnect, or when the broker
 * cancels the consumer, a new one is declared. Events published meanwhile are not seen.
 */
export class FanOutSubscription extends ChannelPart<Channel> implements Subscription {
  constructor(
    link: ConnectionLink,
    logger: Logger,
    private readonly topology: Topology,
    private readonly topic: string,
    private readonly onEvent: (event: GatewayEvent) => void,
  ) {
    super(link, logger.child({ subscription: topic }));
  }

  /** Stops delivery; closing the channel removes the queue. */
  close(): Promise<void> {
    return this.shutDown(async () => undefined);
  }

  protected openChannel(model: ChannelModel): Promise<Channel> {
    return model.createChannel();
  }

  protected async setUp(channel: Channel): Promise<void> {
    const queue = await this.topology.declareFanOut(channel, this.topic);
    await channel.consume(queue, (message) => this.receive(channel, queue, message), { noAck: true });
  }

  private receive(channel: Channel, queue: string, message: ConsumeMessage | null): void {
    if (message === null) {
      this.logger.warn({ queue }, 'RabbitMQ cancelled the fan-out consumer (was its queue deleted?); declaring a new queue');
      this.setUpAgain(channel);
      return;
    }
    deliverToSubscriber(message.content, this.topic, this.onEvent, this.logger, {
      queue,
      messageId: message.properties.messageId,
      routingKey: message.fields.routingKey,
    });
  }
}
