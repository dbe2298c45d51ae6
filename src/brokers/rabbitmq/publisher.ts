import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { BrokerUnavailableError, PublishError } from '../../errors.js';
import { encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import { ATTEMPT_HEADER } from '../headers.js';
import { ChannelPart, type ConnectionLink } from './channel-part.js';
import { ConfirmedSender } from './confirms.js';
import { eventProperties } from './message.js';
import { routingKey, type Topology } from './topology.js';

interface Outgoing {
  readonly event: GatewayEvent;
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers?: Record<string, unknown>;
}

/**
 * Publishes events on one confirm channel per connection. A batch resolves once RabbitMQ has
 * confirmed every event and routed it to at least one queue; otherwise it rejects with a
 * `PublishError` listing exactly the events that were nacked, returned as unroutable, not
 * confirmed in time, or still unconfirmed when the channel or connection failed.
 */
export class Publisher extends ChannelPart<ConfirmChannel> {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    link: ConnectionLink,
    logger: Logger,
    private readonly topology: Topology,
    private readonly confirmTimeoutMs: number,
  ) {
    super(link, logger);
  }

  /** Sends events to the exchange with routing key `<topic>.<type>`. */
  publish(events: readonly GatewayEvent[]): Promise<void> {
    return this.track(events.map((event) => ({ event, exchange: this.topology.exchange, routingKey: routingKey(event) })));
  }

  /** Sends an event straight to `queue` through the default exchange, as a first attempt. */
  sendToQueue(queue: string, event: GatewayEvent): Promise<void> {
    return this.track([{ event, exchange: '', routingKey: queue, headers: { [ATTEMPT_HEADER]: 1 } }]);
  }

  /** Waits for every publish in flight to be confirmed or failed, then closes the channel. */
  close(): Promise<void> {
    return this.shutDown(async () => {
      await Promise.allSettled(this.pending);
    });
  }

  protected openChannel(model: ChannelModel): Promise<ConfirmChannel> {
    return model.createConfirmChannel();
  }

  protected setUp(channel: ConfirmChannel): Promise<void> {
    return this.topology.declareExchange(channel);
  }

  private track(messages: readonly Outgoing[]): Promise<void> {
    const sending = this.send(messages);
    this.pending.add(sending);
    const forget = () => void this.pending.delete(sending);
    sending.then(forget, forget);
    return sending;
  }

  private async send(messages: readonly Outgoing[]): Promise<void> {
    const channel = this.channel;
    if (!channel || this.closing) {
      const reason = new BrokerUnavailableError('the RabbitMQ publisher channel is not open (reconnecting or closing)');
      throw PublishError.forAll(
        messages.map((m) => m.event),
        reason,
      );
    }
    const sender = ConfirmedSender.of(channel);
    const confirms: Promise<Error | undefined>[] = [];
    for (const message of messages) {
      await sender.writable();
      const { event } = message;
      const confirmed = sender.send(message.exchange, message.routingKey, encodeEvent(event), eventProperties(event, message.headers));
      confirms.push(
        confirmed.then(
          () => undefined,
          (error: Error) => error,
        ),
      );
    }
    const outcomes = await this.withinTimeout(confirms);
    const failures = new Map<string, Error>();
    outcomes.forEach((error, i) => {
      if (error) failures.set(messages[i]!.event.id, error);
    });
    PublishError.throwIfAny(failures, messages.length, 'RabbitMQ');
  }

  /** Outcomes of the confirms; one still open after `confirmTimeoutMs` counts as failed. */
  private async withinTimeout(confirms: readonly Promise<Error | undefined>[]): Promise<(Error | undefined)[]> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<Error>((resolve) => {
      timer = setTimeout(() => resolve(new BrokerUnavailableError(`RabbitMQ did not confirm within ${this.confirmTimeoutMs} ms`)), this.confirmTimeoutMs);
    });
    try {
      return await Promise.all(confirms.map((confirm) => Promise.race([confirm, expired])));
    } finally {
      clearTimeout(timer);
    }
  }
}
