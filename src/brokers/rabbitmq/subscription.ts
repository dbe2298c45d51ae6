import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { BrokerUnavailableError, CursorExpiredError, errorMessage, InvalidCursorError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import type { LogPoint, LogPosition } from '../broker.js';
import { deliverToSubscriber } from '../delivery.js';
import { traceHeaders } from '../headers.js';
import { RabbitMqAcker } from './ack-batch.js';
import { ChannelPart, type ConnectionLink } from './channel-part.js';
import { lastOffset, missedBetween, streamOffset } from './stream-offsets.js';
import type { Topology } from './topology.js';

/** Messages a stream consumer holds before acking; RabbitMQ requires a prefetch on streams. */
const PREFETCH = 500;
/**
 * The event at a resume point that still exists arrives in milliseconds; after this long without
 * it, the stream's end is looked at.
 */
const SILENCE_MS = 1000;
/** How long a look at the stream's last chunk waits for it. */
const PROBE_MS = 1000;
/** A stream that holds the resume point but delivers nothing for this long counts as unavailable. */
const RESUME_LIMIT_MS = 30_000;

/**
 * Ephemeral fan-out of one topic: a consumer, on a channel of its own, of the topic's stream
 * queue (`Topology.streamQueue`), which every subscription of the topic in every process reads.
 * Each event comes with its stream offset (partition ""). Starts at the stream's next offset
 * ("from now"), or at a resume point; after a reconnect or a channel loss it goes on after the
 * last offset it saw, so nothing the stream still holds is missed and nothing is repeated.
 *
 * Streams need a prefetch and manual acks; every delivery is acked on receipt, which for a
 * stream only grants credit for more. `noAck` or an offset of a type RabbitMQ does not take would
 * close the whole connection, hence the adapter keeps subscriptions on a connection of their own.
 */
export class StreamSubscription extends ChannelPart<Channel> {
  /** The stream's queue name: RabbitMQ tells nothing over AMQP 0-9-1 that changes when a stream is made anew. */
  readonly log: string;
  readonly start: LogPoint;
  /** Offset of the last message seen (or the resume point; -1 for "from the beginning"); undefined: from now. */
  private last: number | undefined;
  /** The next message is the first of a consumer started at `last`: it shows whether events are missing. */
  private judging = false;
  /** The broker cancelled the consumer (the stream was deleted): the stream may be a new one. */
  private cancelled = false;
  private consumerTag: string | undefined;
  /** Settled by the first message after a resume point: the subscriber may or may not resume there. */
  private readonly verdict: Verdict | undefined;

  constructor(
    link: ConnectionLink,
    logger: Logger,
    private readonly topology: Topology,
    private readonly topic: string,
    private readonly onEvent: (event: GatewayEvent, position: LogPosition) => void,
    after?: number,
  ) {
    const log = topology.streamQueue(topic);
    super(link, logger.child({ subscription: topic, queue: log }));
    this.log = log;
    this.last = after;
    this.start = after === undefined || after < 0 ? {} : { '': after };
    if (after !== undefined) this.verdict = new Verdict();
  }

  /**
   * For a subscription with a resume point, once set up: resolves when the stream still holds every
   * event after the point; rejects with `CursorExpiredError` when retention dropped some of them,
   * `InvalidCursorError` when the point is past the stream's end, `BrokerUnavailableError` when
   * RabbitMQ cannot be asked. Nothing is delivered before the stream's first message is judged.
   */
  async resumed(): Promise<void> {
    const verdict = this.verdict;
    if (!verdict || (await verdict.within(SILENCE_MS))) return;
    // Nothing at or after the point arrived: the stream holds nothing there, or RabbitMQ is slow.
    // The stream's last chunk tells which.
    let end: number | null;
    try {
      end = await this.link.withChannel((channel) => lastOffset(channel, this.log, PROBE_MS));
    } catch (error) {
      verdict.reject(new BrokerUnavailableError(`could not read the end of RabbitMQ stream "${this.log}": ${errorMessage(error)}`, { cause: error }));
      return verdict.promise;
    }
    const point = this.last ?? -1;
    if (end === null && point < 0) verdict.resolve();
    else if (end === null || end < point) {
      verdict.reject(
        new InvalidCursorError(
          `cursor is past the end of the topic's log (at ${point}; RabbitMQ stream "${this.log}" ${end === null ? 'is empty' : `ends at ${end}`})`,
        ),
      );
    } else if (!(await verdict.within(RESUME_LIMIT_MS))) {
      verdict.reject(new BrokerUnavailableError(`RabbitMQ delivered nothing from stream "${this.log}" at offset ${point} within ${RESUME_LIMIT_MS} ms`));
    }
    return verdict.promise;
  }

  /**
   * Stops delivery; the stream and its events stay. The consumer is cancelled before its channel
   * closes: RabbitMQ 3.10 goes on counting a stream consumer whose channel merely closed.
   */
  close(): Promise<void> {
    this.verdict?.reject(new BrokerUnavailableError('the subscription was closed'));
    return this.shutDown(async () => {
      const { channel, consumerTag } = this;
      if (!channel || !consumerTag) return;
      try {
        await channel.cancel(consumerTag);
      } catch (error) {
        this.logger.debug({ err: error }, 'could not cancel the stream consumer; its channel is closed');
      }
    });
  }

  protected openChannel(model: ChannelModel): Promise<Channel> {
    return model.createChannel();
  }

  protected async setUp(channel: Channel): Promise<void> {
    await channel.prefetch(PREFETCH);
    await this.topology.declareStream(channel, this.topic);
    if (this.cancelled) await this.afterCancel();
    // Starting at the last offset seen, rather than after it, shows whether it is still there.
    this.judging = this.last !== undefined;
    const offset = this.last === undefined ? 'next' : Math.max(0, this.last);
    const { consumerTag } = await channel.consume(this.log, (message) => this.receive(channel, message), { arguments: { 'x-stream-offset': offset } });
    this.consumerTag = consumerTag;
  }

  private receive(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      this.logger.warn('RabbitMQ cancelled the subscription (was its stream deleted?); declaring the stream again');
      this.verdict?.reject(new CursorExpiredError(`RabbitMQ stream "${this.log}" was deleted while the subscription resumed`));
      this.cancelled = true;
      this.setUpAgain(channel);
      return;
    }
    const acker = RabbitMqAcker.of(channel, this.logger);
    acker.received(message);
    acker.ack(message);
    const offset = streamOffset(message);
    const ids = { queue: this.log, offset, messageId: message.properties.messageId, routingKey: message.fields.routingKey };
    if (offset === undefined || this.verdict?.refused) {
      if (offset === undefined) this.logger.warn(ids, 'skipped a stream message without an offset');
      return;
    }
    const last = this.last;
    if (this.judging) {
      this.judging = false;
      if (last !== undefined && offset > last && missedBetween(last, offset)) {
        if (this.verdict?.pending) {
          this.verdict.reject(
            new CursorExpiredError(`the events after this cursor are no longer kept: RabbitMQ stream "${this.log}" now starts at offset ${offset}`),
          );
          return;
        }
        this.logger.warn(
          { ...ids, after: last },
          'RabbitMQ no longer kept some events of the topic published while the subscription was away; they are missed',
        );
      }
      this.verdict?.resolve();
    }
    if (last !== undefined && offset <= last) return;
    this.last = offset;
    const trace = traceHeaders((name) => message.properties.headers?.[name]);
    deliverToSubscriber(message.content, this.topic, (event) => this.onEvent(event, { partition: '', offset }), this.logger, ids, trace);
  }

  /**
   * A stream deleted and declared again starts over at offset 0. When it ends before the last
   * offset seen, it is a new stream: read it from its beginning. Otherwise carry on after that
   * offset (events another process routed into a new stream in the meantime cannot be told apart).
   */
  private async afterCancel(): Promise<void> {
    this.cancelled = false;
    if (this.last === undefined) return;
    const end = await this.link.withChannel((channel) => lastOffset(channel, this.log, PROBE_MS));
    if (end !== null && end >= this.last) return;
    this.logger.warn({ after: this.last }, 'the stream was made anew; reading it from its beginning (cursors from the old stream no longer fit)');
    this.last = -1;
  }
}

/** The outcome of a resume, settled once, by whichever side knows first. */
class Verdict {
  readonly promise: Promise<void>;
  pending = true;
  refused = false;
  private settle!: (error?: Error) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve());
    });
    // Rejections are read through `resumed()`; one nobody waits for any more is not an error.
    this.promise.catch(() => undefined);
  }

  resolve(): void {
    if (!this.pending) return;
    this.pending = false;
    this.settle();
  }

  reject(error: Error): void {
    if (!this.pending) return;
    this.pending = false;
    this.refused = true;
    this.settle(error);
  }

  /** Whether it settles within `ms` (rejects if it settles with an error). */
  async within(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([this.promise.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
