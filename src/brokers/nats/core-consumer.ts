import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node';
import type { ConsumerBinding, ConsumerHandle, Delivery, DeliverySink, Settlement } from '../broker.js';
import type { NatsDeps, NatsSession } from './connection.js';
import { toDelivery } from './messages.js';
import { consumerFilter, replaySubject } from './subjects.js';

/**
 * Core mode (no JetStream): a consumer is a queue-group subscription named after it, so the
 * processes attached to one name share the messages, each message reaching one of them. Delivery
 * is at most once: nothing is kept for a consumer while no process is attached, and a retry waits
 * in this process's memory (lost if it stops). Replays arrive on `events._replay.<name>` as a
 * request that the receiving process answers once it holds the message.
 */
export class CoreConsumer implements ConsumerHandle {
  /** Deliveries handed to the sink and not settled yet. */
  private unsettled = 0;
  private readonly subs: NatsSubscription[] = [];
  private readonly retries = new Map<NodeJS.Timeout, Delivery>();
  private closing = false;
  private readonly stopped = new AbortController();

  constructor(
    private readonly deps: NatsDeps,
    private readonly binding: ConsumerBinding,
    private readonly sink: DeliverySink,
  ) {}

  /** Subscribes now when connected (resolving once the server registered it), else once connected. */
  async start(): Promise<void> {
    const session = this.deps.connector.current();
    if (session) await this.subscribe(session);
    this.deps.connector.follow((next) => this.subscribe(next), {
      signal: this.stopped.signal,
      openedOn: session?.nc,
      onError: (error) => this.deps.logger.error({ err: error, consumer: this.binding.name }, 'could not subscribe a core NATS consumer'),
    });
  }

  /** Core NATS keeps no backlog to measure. */
  async lag(): Promise<number | null> {
    return null;
  }

  /** Drains the subscriptions (messages already received are handled), waits for handler calls, and drops waiting retries. */
  async close(): Promise<void> {
    this.closing = true;
    this.stopped.abort();
    const ids = { consumer: this.binding.name };
    await Promise.all(this.subs.map((sub) => sub.drain().catch((error: unknown) => this.deps.logger.debug({ err: error, ...ids }, 'could not drain'))));
    await this.sink.idle();
    for (const [timer, { event, attempt }] of this.retries) {
      clearTimeout(timer);
      this.deps.logger.warn({ ...ids, eventId: event.id, attempt }, 'consumer closed; its retry is dropped (core NATS keeps nothing)');
    }
    this.retries.clear();
  }

  private async subscribe(session: NatsSession): Promise<void> {
    if (this.closing) return;
    const { nc } = session;
    const queue = this.binding.name;
    // Subscriptions of a connection that closed for good went with it.
    this.subs.splice(0, this.subs.length, ...this.subs.filter((sub) => !sub.isClosed()));
    this.subs.push(
      nc.subscribe(consumerFilter(this.binding), { queue, callback: (error, message) => void this.receive(error, message) }),
      nc.subscribe(replaySubject(this.binding.name), {
        queue,
        callback: (error, message) => {
          // The answer tells `redeliver` this process holds the replay.
          if (this.receive(error, message)) message.respond();
        },
      }),
    );
    // Registered with nats.js either way, which sends them again after a reconnect.
    await nc.flush().catch((error: unknown) => {
      this.deps.logger.warn({ err: error, consumer: this.binding.name }, 'core NATS consumer not confirmed yet');
    });
  }

  /** Takes a message unless the backlog is full; true when taken. */
  private receive(error: Error | null, message: Msg): boolean {
    if (error) {
      this.deps.logger.warn({ err: error, consumer: this.binding.name }, 'core NATS subscription error');
      return false;
    }
    const ids = { consumer: this.binding.name, subject: message.subject };
    const delivery = toDelivery(message, { topic: this.binding.topic, attempt: 1 });
    if (this.unsettled >= this.deps.options.coreBacklogLimit) {
      const context = { ...ids, eventId: delivery.event.id, backlog: this.unsettled };
      this.deps.logger.error(context, 'consumer backlog full; delivery dropped (core NATS, at most once)');
      return false;
    }
    this.enqueue(delivery);
    return true;
  }

  private enqueue(delivery: Delivery): void {
    this.unsettled++;
    this.sink.push({
      ...delivery,
      ids: { consumer: this.binding.name },
      settle: async (settlement) => {
        this.unsettled--;
        this.settle(delivery, settlement);
      },
    });
  }

  /** Acks and dead letters need nothing from core NATS; a retry comes back after its delay, from memory. */
  private settle(delivery: Delivery, settlement: Settlement): void {
    if (settlement.kind !== 'retry') return;
    if (this.closing) {
      const context = { consumer: this.binding.name, eventId: delivery.event.id, attempt: delivery.attempt };
      this.deps.logger.warn(context, 'consumer closing; retry dropped (core NATS keeps nothing)');
      return;
    }
    const timer = setTimeout(
      () => {
        this.retries.delete(timer);
        this.enqueue({ ...delivery, attempt: delivery.attempt + 1 });
      },
      Math.max(0, settlement.delayMs),
    );
    timer.unref();
    this.retries.set(timer, delivery);
  }
}
