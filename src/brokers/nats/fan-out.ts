import { DeliverPolicy, type Consumer, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { BrokerUnavailableError, errorMessage } from '../../errors.js';
import { deliverToSubscriber } from '../delivery.js';
import type { GatewayEvent } from '../../events/event.js';
import { backoffDelay, sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { Subscription } from '../broker.js';
import type { NatsDeps, NatsSession } from './connection.js';
import { topicSubjects } from './subjects.js';

type OnEvent = (event: GatewayEvent) => void;

function deliver(message: Msg | JsMsg, topic: string, onEvent: OnEvent, logger: Logger): void {
  deliverToSubscriber(message.data, topic, onEvent, logger, { subject: message.subject, seq: 'seq' in message ? message.seq : undefined });
}

/**
 * JetStream fan-out through an ordered consumer on `events.<topic>.>`: an ephemeral, unacked,
 * in-memory consumer, never a durable one. It starts after the stream's last message, so it
 * delivers events stored from now on, in stream order, each once, and only what the stream
 * stored (a duplicate publish the stream dropped is not fanned out). Across a reconnect nats.js
 * re-creates it at the next sequence, so nothing stored meanwhile is skipped; should nats.js give
 * up, this re-creates it there itself.
 */
export class OrderedFanOut implements Subscription {
  private nextSeq = 0;
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly closing = new AbortController();

  constructor(
    private readonly deps: NatsDeps,
    private readonly topic: string,
    private readonly onEvent: OnEvent,
  ) {}

  /**
   * Starts from the stream's current end and resolves once live; before the first connection,
   * starts in the background once connected. Rejects with `BrokerUnavailableError`.
   */
  async open(): Promise<void> {
    const session = this.deps.connector.current();
    if (!session) return void this.reopen(0);
    try {
      await this.start(session, await this.streamEnd(session));
    } catch (error) {
      throw new BrokerUnavailableError(`could not subscribe to topic ${this.topic}: ${errorMessage(error)}`, { cause: error });
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

  private async streamEnd(session: NatsSession): Promise<number> {
    const info = await session.jsm!.streams.info(this.deps.options.stream);
    return info.state.last_seq + 1;
  }

  private async start(session: NatsSession, startSeq: number): Promise<void> {
    this.nextSeq = startSeq;
    const consumer = await session.js!.consumers.get(this.deps.options.stream, {
      filter_subjects: topicSubjects(this.topic),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSeq,
    });
    const messages = await consumer.consume({
      expires: this.deps.options.pullExpiresMs,
      callback: (message) => {
        this.nextSeq = message.seq + 1;
        deliver(message, this.topic, this.onEvent, this.deps.logger);
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

  /** Starts again at `startSeq` (0: the stream's end) once connected, retrying with backoff. */
  private async reopen(startSeq: number): Promise<void> {
    const { signal } = this.closing;
    for (let attempt = 1; !signal.aborted; attempt++) {
      const session = await this.deps.connector.ready(signal);
      if (!session) return;
      try {
        await this.start(session, startSeq || (await this.streamEnd(session)));
        return;
      } catch (error) {
        this.deps.logger.warn({ err: error, topic: this.topic, attempt }, 'could not open a fan-out consumer; retrying');
        await sleep(backoffDelay(this.deps.options.reconnectBackoff, attempt), signal);
      }
    }
  }
}

/**
 * Core-mode fan-out: a plain subscription on `events.<topic>.>`. nats.js re-subscribes after a
 * reconnect, and `follow` after a replaced connection; events published while this process was
 * disconnected are not seen (at most once).
 * Resolves once the server has registered it, so no later event is missed.
 */
export async function subscribeCore({ connector, logger }: NatsDeps, topic: string, onEvent: OnEvent): Promise<Subscription> {
  let sub: NatsSubscription | undefined;
  const closed = new AbortController();
  const open = (session: NatsSession) => {
    if (closed.signal.aborted) return Promise.resolve();
    sub = session.nc.subscribe(topicSubjects(topic), {
      callback: (error, message) => {
        if (error) logger.warn({ err: error, topic }, 'fan-out subscription error');
        else deliver(message, topic, onEvent, logger);
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
    close: async () => {
      closed.abort();
      await sub?.drain().catch((error: unknown) => logger.debug({ err: error, topic }, 'could not drain a fan-out subscription'));
    },
  };
}
