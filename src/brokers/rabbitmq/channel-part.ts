import type { Channel, ChannelModel } from 'amqplib';
import { BrokerUnavailableError } from '../../errors.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';

/** What a channel part needs of the connection it lives on. */
export interface ConnectionLink {
  /** The open connection, or undefined between connections (the next one attaches every part). */
  current(): ChannelModel | undefined;
  /** Delays between attempts to set a part up again. */
  readonly retry: BackoffPolicy;
  /** Runs `use` on a short-lived channel of its own, so a failing check cannot close a busy channel. */
  withChannel<T>(use: (channel: Channel) => Promise<T>): Promise<T>;
}

/**
 * A piece of the adapter living on a channel of its own: the publisher, a durable consumer, a
 * fan-out subscription. amqplib's recovery brings the connection back; a part is then attached
 * to the new connection (`attach`, called for every part on every connection). A part whose
 * channel closes while the connection stays up (the broker closed it after an error) sets itself
 * up again on a fresh channel after a backoff. Attaching is serialised per part, and attaching
 * twice to one connection is a no-op, so a reconnect and a retry racing each other open one
 * channel, not two.
 */
export abstract class ChannelPart<C extends Channel> {
  protected channel: C | undefined;
  protected closing = false;
  private model: ChannelModel | undefined;
  private work: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    protected readonly link: ConnectionLink,
    protected readonly logger: Logger,
  ) {}

  /** Opens the kind of channel this part needs. */
  protected abstract openChannel(model: ChannelModel): Promise<C>;

  /** Declares what the part needs and starts consuming, on a fresh channel. Safe to repeat. */
  protected abstract setUp(channel: C): Promise<void>;

  /** Sets the part up on `model`, unless it already lives there. Rejects when set-up fails. */
  attach(model: ChannelModel): Promise<void> {
    return this.serially(() => this.attachNow(model));
  }

  /** Tries `attach` again after a backoff, on whatever connection is open then. */
  retryLater(): void {
    if (this.closing || this.timer) return;
    const delay = backoffDelay(this.link.retry, ++this.failures);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const model = this.link.current();
      if (!model) return;
      this.attach(model).catch((error: unknown) => {
        this.logger.error({ err: error }, 'could not set up again on RabbitMQ; trying again later');
        this.retryLater();
      });
    }, delay);
  }

  /**
   * Runs set-up again on the part's channel, e.g. after the broker cancelled its consumer
   * because the queue was deleted; if that fails, the channel is closed and a fresh one retried.
   */
  protected setUpAgain(channel: C): void {
    this.serially(async () => {
      if (channel === this.channel && !this.closing) await this.setUp(channel);
    }).catch((error: unknown) => {
      this.logger.error({ err: error }, 'could not set up again on RabbitMQ; reopening the channel');
      void closeChannel(channel, this.logger);
    });
  }

  /** Stops re-attaching, lets `drain` finish (it may still use the channel), then closes the channel. */
  protected async shutDown(drain: () => Promise<void>): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    await this.work;
    await drain();
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeChannel(channel, this.logger);
  }

  private serially(task: () => Promise<void>): Promise<void> {
    const run = this.work.then(task);
    this.work = run.catch(() => undefined);
    return run;
  }

  private async attachNow(model: ChannelModel): Promise<void> {
    if (this.closing || (this.channel && this.model === model)) return;
    const channel = await this.openChannel(model);
    let closedEarly = false;
    // The broker's reason arrives as 'error', then 'close'. During set-up the failing step rejects
    // with the same reason (and its caller logs it), so only a live channel's error is a warning.
    channel.on('error', (error: unknown) => {
      if (channel === this.channel) this.logger.warn({ err: error }, 'RabbitMQ closed the channel; reopening it');
      else this.logger.debug({ err: error }, 'RabbitMQ closed a channel during set-up');
    });
    channel.once('close', () => {
      closedEarly = true;
      if (channel === this.channel) this.lost();
    });
    try {
      await this.setUp(channel);
    } catch (error) {
      await closeChannel(channel, this.logger);
      throw error;
    }
    if (closedEarly) throw new BrokerUnavailableError('the RabbitMQ channel closed while it was being set up');
    if (this.closing) {
      await closeChannel(channel, this.logger);
      return;
    }
    this.channel = channel;
    this.model = model;
    this.failures = 0;
  }

  private lost(): void {
    this.channel = undefined;
    this.model = undefined;
    // When the whole connection went, this timer finds no connection and gives way to the
    // reconnect, which attaches every part; otherwise it reopens this part's channel.
    this.retryLater();
  }
}

/** Closes a channel that may already be closed (by the broker, or with its connection). */
export async function closeChannel(channel: Channel, logger: Logger): Promise<void> {
  try {
    await channel.close();
  } catch (error) {
    logger.debug({ err: error }, 'RabbitMQ channel was already closed');
  }
}
