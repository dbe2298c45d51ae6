import type { JsMsg } from '@nats-io/jetstream';
import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { ConfigError } from '../../errors.js';
import type { ConsumerBinding, ConsumerHandle, DeliverySink, InboundDelivery, Settlement } from '../broker.js';
import type { NatsDeps, NatsSession } from './connection.js';
import { consumerInfo, durableConsumerConfig, ensureBindingConsumer } from './consumer-config.js';
import { MSG_ID_HEADER, toDelivery } from './messages.js';
import { PullLoop } from './pull-loop.js';

const GAVE_UP = 'NATS gave up on a message after max_deliver deliveries without a settlement';

/**
 * One attachment of a process to a durable JetStream consumer: pulls the consumer (up to the
 * binding's window of unsettled messages) and its replay companion (one at a time), hands every
 * delivery to the sink in arrival order, and settles it: ack → `ack()`, retry → `nak(delay)`,
 * dead-letter → `term()`. The attempt is JetStream's delivery count. Other processes attached to
 * the same name pull the same consumers and so share the messages.
 */
export class JetStreamConsumer implements ConsumerHandle {
  private readonly loops: PullLoop[];
  private readonly names: readonly string[];
  private readonly closing = new AbortController();
  private readonly giveUps: NatsSubscription[] = [];

  constructor(
    private readonly deps: NatsDeps,
    private readonly binding: ConsumerBinding,
    private readonly sink: DeliverySink,
  ) {
    const { connector, options, logger } = deps;
    const loop = (replay: boolean, limit: number) => {
      const config = durableConsumerConfig(binding, options, replay);
      return new PullLoop(
        connector,
        {
          consumer: config.durable_name,
          stream: options.stream,
          limit,
          expiresMs: options.pullExpiresMs,
          backoff: options.reconnectBackoff,
          ensure: (session) => ensureBindingConsumer(session, binding, options, replay),
          receive: (message, settled) => this.sink.push(this.inbound(message, settled)),
        },
        logger,
      );
    };
    // Replays are rare operator actions: one at a time, on top of the window, so that a replay
    // never waits behind a pull request holding all of it.
    this.loops = [loop(false, binding.window), loop(true, 1)];
    this.names = [false, true].map((replay) => durableConsumerConfig(binding, options, replay).durable_name);
  }

  /**
   * Creates or updates both consumers now when connected, so that a configuration NATS refuses
   * fails the attach (`ConfigError`); any other failure is left to the pull loops, which retry.
   */
  async start(): Promise<void> {
    const session = this.deps.connector.current();
    if (session) {
      try {
        await Promise.all([false, true].map((replay) => ensureBindingConsumer(session, this.binding, this.deps.options, replay)));
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        this.deps.logger.warn({ err: error, consumer: this.binding.name }, 'could not set the consumer up yet; retrying in the background');
      }
    }
    for (const loop of this.loops) loop.start();
    // On every connection: one that replaced a closed one starts without the advisory subscriptions.
    this.deps.connector.follow(async (ready) => this.watchGiveUps(ready), {
      signal: this.closing.signal,
      onError: (error) => this.deps.logger.warn({ err: error, consumer: this.binding.name }, 'cannot watch NATS max_deliver advisories'),
    });
  }

  /**
   * Stored messages not yet delivered (`num_pending`) to the consumer and its replay companion.
   * Deliveries awaiting a settlement or a retry delay (`num_ack_pending`) are not counted.
   */
  async lag(): Promise<number | null> {
    const jsm = this.deps.connector.current()?.jsm;
    if (!jsm) return null;
    const infos = await Promise.all(this.names.map((name) => consumerInfo(jsm, this.deps.options.stream, name)));
    return infos.reduce((sum, info) => sum + (info?.num_pending ?? 0), 0);
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all(this.loops.map((loop) => loop.stop()));
    await this.sink.idle();
    for (const sub of this.giveUps.splice(0)) sub.unsubscribe();
  }

  /**
   * After `max_deliver` deliveries without a settlement (processes dying mid-delivery), JetStream
   * stops delivering a message and says so only in an advisory. Log it with the ids that find the
   * message: it stays in the stream at that sequence.
   */
  private watchGiveUps(session: NatsSession): void {
    if (this.closing.signal.aborted) return;
    const { stream } = this.deps.options;
    // Those of a connection that closed for good went with it.
    this.giveUps.splice(0, this.giveUps.length, ...this.giveUps.filter((sub) => !sub.isClosed()));
    for (const consumer of this.names) {
      const sub = session.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`, {
        callback: (error, advisory: Msg) => {
          if (error) {
            this.deps.logger.warn({ err: error, consumer }, 'cannot watch NATS max_deliver advisories');
            return;
          }
          const { stream_seq: seq, deliveries } = advisory.json<{ stream_seq: number; deliveries: number }>();
          const log = (eventId: string | undefined) => this.deps.logger.error({ consumer, stream, seq, deliveries, eventId }, GAVE_UP);
          void session.jsm!.streams.getMessage(stream, { seq }).then(
            (message) => log(message?.header.get(MSG_ID_HEADER) || undefined),
            () => log(undefined),
          );
        },
      });
      this.giveUps.push(sub);
    }
  }

  private inbound(message: JsMsg, settled: () => void): InboundDelivery {
    const ids = { consumer: this.binding.name, subject: message.subject, stream: this.deps.options.stream, seq: message.seq };
    return {
      ...toDelivery(message, {
        topic: this.binding.topic,
        attempt: message.info.deliveryCount,
        fallbackId: `${this.deps.options.stream}-${message.seq}`,
      }),
      ids,
      settle: async (settlement) => {
        try {
          settle(message, settlement);
        } catch (error) {
          this.deps.logger.error({ err: error, ...ids, settlement: settlement.kind }, 'could not settle a delivery; NATS delivers it again');
        } finally {
          settled();
        }
      },
      started: () => {
        // Any ack wait of this consumer is at least ackWaitMs: report progress well within it.
        const timer = setInterval(
          () => {
            try {
              message.working();
            } catch (error) {
              this.deps.logger.debug({ err: error, ...ids }, 'could not report progress on a delivery');
            }
          },
          Math.max(100, Math.floor(this.deps.options.ackWaitMs / 3)),
        );
        timer.unref();
        return () => clearInterval(timer);
      },
    };
  }
}

function settle(message: JsMsg, settlement: Settlement): void {
  switch (settlement.kind) {
    case 'ack':
      message.ack();
      return;
    case 'retry':
      // A NAK without a delay is redelivered at once: never send one for a requested delay.
      message.nak(Math.max(1, Math.round(settlement.delayMs)));
      return;
    case 'dead-letter':
      // The pipeline has recorded the dead letter. A plain term(): servers before 2.11 ignore a reason.
      message.term();
      return;
  }
}
