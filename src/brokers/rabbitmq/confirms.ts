import type { ConfirmChannel, Message, Options } from 'amqplib';
import { BrokerUnavailableError, errorMessage, UnroutableEventError } from '../../errors.js';

/** Options of a confirmed send: every message the gateway sends has an id to report it by. */
export type SendOptions = Options.Publish & { readonly messageId: string };

/**
 * Sends messages on one confirm channel and settles each with the broker's verdict. Every message
 * is `mandatory`, so a message no queue takes comes back as a `basic.return`, which RabbitMQ sends
 * before its `basic.ack`: the return is remembered by message id and turns that ack into a failure.
 * Nacks and a channel closing before the confirm are failures too. One sender per channel.
 */
export class ConfirmedSender {
  private static readonly byChannel = new WeakMap<ConfirmChannel, ConfirmedSender>();

  static of(channel: ConfirmChannel): ConfirmedSender {
    let sender = ConfirmedSender.byChannel.get(channel);
    if (!sender) ConfirmedSender.byChannel.set(channel, (sender = new ConfirmedSender(channel)));
    return sender;
  }

  /** Why RabbitMQ returned messages, by message id, until their ack arrives. */
  private readonly returns = new Map<string, string[]>();
  private full: Promise<void> | undefined;

  private constructor(private readonly channel: ConfirmChannel) {
    channel.on('return', (message: Message) => {
      const id = String(message.properties.messageId);
      const { replyCode, replyText, exchange, routingKey } = message.fields as Message['fields'] & { replyCode?: number; replyText?: string };
      const reason = `no queue is bound to routing key "${routingKey}" on exchange "${exchange || '(default)'}" (${replyCode} ${replyText})`;
      this.returns.set(id, [...(this.returns.get(id) ?? []), reason]);
    });
  }

  /**
   * Resolves at once while the channel takes more data, else when its write buffer has drained
   * (or the channel closed, which the next send reports). Call it between sends of a batch.
   */
  writable(): Promise<void> {
    return this.full ?? Promise.resolve();
  }

  /** Sends one message; resolves once RabbitMQ confirmed it and a queue took it. */
  send(exchange: string, routingKey: string, content: Buffer, options: SendOptions): Promise<void> {
    const id = options.messageId;
    return new Promise((resolve, reject) => {
      const settle = (error: unknown) => {
        const returned = this.takeReturn(id);
        if (error) {
          reject(new BrokerUnavailableError(`RabbitMQ did not confirm message ${id}: ${errorMessage(error)}`, { cause: error }));
        } else if (returned !== undefined) {
          reject(new UnroutableEventError(`RabbitMQ returned message ${id} as unroutable: ${returned}`));
        } else {
          resolve();
        }
      };
      let writable: boolean;
      try {
        writable = this.channel.publish(exchange, routingKey, content, { ...options, mandatory: true }, settle);
      } catch (error) {
        // amqplib throws at once when the channel is already closed.
        reject(new BrokerUnavailableError(`could not send message ${id}: ${errorMessage(error)}`, { cause: error }));
        return;
      }
      if (!writable) this.waitForDrain();
    });
  }

  private waitForDrain(): void {
    this.full ??= new Promise((resolve) => {
      const done = () => {
        this.channel.off('drain', done);
        this.channel.off('close', done);
        this.full = undefined;
        resolve();
      };
      this.channel.on('drain', done);
      this.channel.on('close', done);
    });
  }

  private takeReturn(id: string): string | undefined {
    const reasons = this.returns.get(id);
    const reason = reasons?.shift();
    if (reasons?.length === 0) this.returns.delete(id);
    return reason;
  }
}
