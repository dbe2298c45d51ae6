import { DeliverPolicy, type Consumer, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { BrokerUnavailableError, CursorExpiredError, errorMessage } from '../../errors.js';
import { deliverToSubscriber } from '../delivery.js';
import { traceHeaders } from '../headers.js';
import type { GatewayEvent } from '../../events/event.js';
import { backoffDelay, sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { FanOutOptions, LogPoint, LogPosition, Subscription } from '../broker.js';
import type { NatsDeps, NatsSession } from './connection.js';
import { checkResumed, PARTITION, resumeSequence, streamLog } from './log-position.js';
import { topicSubjects } from './subjects.js';

export type OnEvent = (event: GatewayEvent, position: LogPosition | null) => void;

function deliver(message: Msg | JsMsg, topic: string, onEvent: OnEvent, position: LogPosition | null, logger: Logger): void {
  const ids = { subject: message.subject, seq: position?.offset };
  const trace = traceHeaders((name) => message.headers?.get(name) || undefined);
  deliverToSubscriber(message.data, topic, (event) => onEvent(event, position), logger, ids, trace);
}

/**
 * JetStream fan-out through an ordered consumer on `events.<topic>.>`: an ephemeral, unacked,
 * in-memory consumer, never a durable one. It starts after the stream's last message (or after
 * `after`), so it delivers events stored from then on, in stream order, each once with its stream
 * sequence as position (see `log-position.ts`), and only what the stream stored (a duplicate
 * publish the stream dropped is not fanned out). Across a reconnect nats.js re-creates it at the
 * next sequence, so nothing stored meanwhile is skipped; should nats.js give up, this re-creates
 * it there itself.
 */
export class OrderedFanOut implements Subscription {
  private identity = '';
  private startPoint: LogPoint = {};
  /** Where to go on should the consumer end: after the last event delivered. */
  private nextSeq = 0;
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly closing = new AbortController();

  constructor(
    private readonly deps: NatsDeps,
    private readonly topic: string,
    private readonly onEvent: OnEvent,
    private readonly after: FanOutOptions['after'],
  ) {}

  /** The stream's identity (`streamLog`) when this subscription opened. */
  get log(): string {
    return this.identity;
  }

  get start(): LogPoint {
    return this.startPoint;
  }

  /**
   * Starts after the stream's current end, or after `after`, and resolves once live; while NATS
   * is not connected, waits for the connection (positions need the stream). Rejects with
   * `CursorExpiredError` / `InvalidCursorError` for an `after` the stream cannot serve, with
   * `BrokerUnavailableError` when the server could not be asked or the broker closed meanwhile.
   */
  async open(): Promise<void> {
    const session = await this.deps.connector.ready(this.closing.signal);
    if (!session) throw new BrokerUnavailableError(`could not subscribe to topic ${this.topic}: the NATS broker was closed`);
    const stream = await this.io(() => session.jsm!.streams.info(this.deps.options.stream));
    this.identity = streamLog(stream);
    const after = this.after ? resumeSequence(this.after, this.identity) : stream.state.last_seq;
    const { consumer, startedAfter } = await this.io(() => this.create(session, after));
    try {
      if (this.after) checkResumed(after, startedAfter);
      this.startPoint = { [PARTITION]: startedAfter };
      await this.io(() => this.consume(consumer, startedAfter + 1));
    } catch (error) {
      await this.discard(consumer);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closing.abort();
    const { messages, consumer } = this;
    this.messages = this.consumer = undefined;
    await messages?.close();
    if (consumer) await this.discard(consumer);
  }

  /** Ordered consumers expire by themselves after 5 minutes without a pull; deleting is tidier. */
  private async discard(consumer: Consumer): Promise<void> {
    await consumer.delete().catch((error: unknown) => {
      this.deps.logger.debug({ err: error, topic: this.topic }, 'could not delete a fan-out consumer');
    });
  }

  private async io<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      throw new BrokerUnavailableError(`could not subscribe to topic ${this.topic}: ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * Creates the ordered consumer to deliver the events after sequence `after`. `startedAfter` is
   * where the server really put it, from the info it answered the creation with (`checkResumed`).
   */
  private async create(session: NatsSession, after: number): Promise<{ consumer: Consumer; startedAfter: number }> {
    // Always a start sequence, never DeliverPolicy.New: nats.js re-creates an ordered consumer at
    // its cursor + 1, and a consumer that started "new" and saw nothing yet has cursor 0, which
    // would replay the whole stream.
    const consumer = await session.js!.consumers.get(this.deps.options.stream, {
      filter_subjects: topicSubjects(this.topic),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
    });
    const info = await consumer.info(true);
    return { consumer, startedAfter: info.delivered.stream_seq };
  }

  private async consume(consumer: Consumer, nextSeq: number): Promise<void> {
    this.nextSeq = nextSeq;
    const messages = await consumer.consume({
      expires: this.deps.options.pullExpiresMs,
      callback: (message) => {
        this.nextSeq = message.seq + 1;
        deliver(message, this.topic, this.onEvent, { partition: PARTITION, offset: message.seq }, this.deps.logger);
      },
    });
    if (this.closing.signal.aborted) {
      await messages.close();
      await this.discard(consumer);
      return;
    }
    this.consumer = consumer;
    this.messages = messages;
    void messages.closed().then((error) => {
      if (this.closing.signal.aborted || this.messages !== messages) return;
      this.deps.logger.warn({ err: error, topic: this.topic, nextSeq: this.nextSeq }, 'fan-out consumer ended; re-creating it');
      void this.discard(consumer);
      void this.reopen(this.nextSeq);
    });
  }

  /** Goes on at `nextSeq` once connected, retrying with backoff. */
  private async reopen(nextSeq: number): Promise<void> {
    const { signal } = this.closing;
    for (let attempt = 1; !signal.aborted; attempt++) {
      const session = await this.deps.connector.ready(signal);
      if (!session) return;
      try {
        const { consumer, startedAfter } = await this.create(session, nextSeq - 1);
        this.reportMovedStart(nextSeq - 1, startedAfter);
        await this.consume(consumer, startedAfter + 1).catch(async (error: unknown) => {
          await this.discard(consumer);
          throw error;
        });
        return;
      } catch (error) {
        this.deps.logger.warn({ err: error, topic: this.topic, attempt }, 'could not open a fan-out consumer; retrying');
        await sleep(backoffDelay(this.deps.options.reconnectBackoff, attempt), signal);
      }
    }
  }

  /** A subscription cannot refuse events once it runs: a start the server moved is only logged. */
  private reportMovedStart(after: number, startedAfter: number): void {
    if (startedAfter === after) return;
    const ids = { topic: this.topic, stream: this.deps.options.stream, log: this.identity, after, startedAfter };
    if (startedAfter > after) this.deps.logger.error(ids, 'the NATS stream removed events before the fan-out consumer was re-created; they are skipped');
    else this.deps.logger.error(ids, 'the NATS stream ends before where the fan-out was (made anew?); its positions start again lower');
  }
}

/**
 * Core-mode fan-out: a plain subscription on `events.<topic>.>`. nats.js re-subscribes after a
 * reconnect, and `follow` after a replaced connection; events published while this process was
 * disconnected are not seen (at most once). Events carry no position, and `after` is refused
 * with `CursorExpiredError`: core NATS keeps nothing to resume from.
 * Resolves once the server has registered it, so no later event is missed.
 */
export async function subscribeCore({ connector, logger }: NatsDeps, topic: string, onEvent: OnEvent, options: FanOutOptions = {}): Promise<Subscription> {
  if (options.after) {
    throw new CursorExpiredError('this gateway runs on core NATS, which keeps nothing to resume from; subscribe without "after"');
  }
  let sub: NatsSubscription | undefined;
  const closed = new AbortController();
  const open = (session: NatsSession) => {
    if (closed.signal.aborted) return Promise.resolve();
    sub = session.nc.subscribe(topicSubjects(topic), {
      callback: (error, message) => {
        if (error) logger.warn({ err: error, topic }, 'fan-out subscription error');
        else deliver(message, topic, onEvent, null, logger);
      },
    });
    return session.nc.flush();
  };
  const session = connector.current();
  if (session) {
    try {
      await open(session);
    } catch (error) {
      sub?.unsubscribe();
      throw new BrokerUnavailableError(`could not subscribe to topic ${topic}: ${errorMessage(error)}`, { cause: error });
    }
  }
  connector.follow(open, {
    signal: closed.signal,
    openedOn: session?.nc,
    onError: (error) => logger.warn({ err: error, topic }, 'fan-out subscription not confirmed'),
  });
  return {
    log: null,
    start: {},
    close: async () => {
      closed.abort();
      await sub?.drain().catch((error: unknown) => logger.debug({ err: error, topic }, 'could not drain a fan-out subscription'));
    },
  };
}
