import type { Consumer, ConsumerInfo, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { backoffDelay, sleep, type BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import { Signal } from '../../util/signal.js';
import type { NatsConnector, NatsSession } from './connection.js';

export interface PullLoopOptions {
  /** The durable consumer pulled from. */
  readonly consumer: string;
  readonly stream: string;
  /** Most deliveries from this loop received and not yet settled. */
  readonly limit: number;
  readonly expiresMs: number;
  /** Delays after failed pulls. */
  readonly backoff: BackoffPolicy;
  /** Creates or updates the durable consumer; called before the first pull of every connection and after a failed pull. */
  ensure(session: NatsSession): Promise<ConsumerInfo>;
  /** Takes a received message; `settled` must be called once it has been settled. */
  receive(message: JsMsg, settled: () => void): void;
}

/** How long a loop waiting for a settlement sleeps before it looks again, should a wake-up be missed. */
const RECHECK_MS = 1000;

/**
 * Pulls one durable consumer: one fetch at a time, each for as many messages as the loop has room
 * for once it has room for a quarter of `limit`, so messages arrive in stream order and this process
 * never holds more than `limit` unsettled. Failed pulls (server restarting, consumer deleted) are retried with backoff once the
 * connection is back, re-creating the consumer first.
 */
export class PullLoop {
  private unsettled = 0;
  private readonly room = new Signal();
  private readonly stopping = new AbortController();
  private batch: ConsumerMessages | undefined;
  private bound: { session: NatsSession; consumer: Consumer } | undefined;
  private done: Promise<void> | undefined;

  constructor(
    private readonly connector: NatsConnector,
    private readonly options: PullLoopOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.done ??= this.run();
  }

  /**
   * Stops pulling. An open fetch is ended without stranding messages already on their way here
   * (they are received as usual); resolves when the loop has ended. Unsettled deliveries are the
   * caller's to finish.
   */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.room.notify();
    if (this.batch) await endFetch(this.batch, this.logger);
    await this.done;
  }

  private async run(): Promise<void> {
    const { signal } = this.stopping;
    let failures = 0;
    // Pull in chunks of a quarter of the window: a pull per settled message would cost a round
    // trip to the server each, and waiting for half of it empties the runtime's queue first.
    const chunk = Math.max(1, Math.floor(this.options.limit / 4));
    while (!signal.aborted) {
      const room = this.options.limit - this.unsettled;
      if (room < chunk) {
        await this.room.wait(RECHECK_MS, signal);
        continue;
      }
      const session = await this.connector.ready(signal);
      if (!session) break;
      try {
        const consumer = await this.consumerFor(session);
        const batch = await consumer.fetch({ max_messages: room, expires: this.options.expiresMs });
        this.batch = batch;
        if (signal.aborted) await endFetch(batch, this.logger);
        for await (const message of batch) {
          this.unsettled++;
          let settled = false;
          this.options.receive(message, () => {
            if (settled) return;
            settled = true;
            this.unsettled--;
            this.room.notify();
          });
        }
        failures = 0;
      } catch (error) {
        failures++;
        // The consumer may be gone (deleted, or a server that lost its store): ensure it again.
        this.bound = undefined;
        const { consumer, stream } = this.options;
        this.logger.warn({ err: error, consumer, stream, failures }, 'NATS pull failed; retrying');
        await sleep(backoffDelay(this.options.backoff, failures), signal);
      } finally {
        this.batch = undefined;
      }
    }
  }

  private async consumerFor(session: NatsSession): Promise<Consumer> {
    if (this.bound?.session === session) return this.bound.consumer;
    const info = await this.options.ensure(session);
    const consumer = session.js!.consumers.getConsumerFromInfo(info);
    this.bound = { session, consumer };
    return consumer;
  }
}

/**
 * Ends a fetch gracefully. nats.js's `stop()` unsubscribes at once, dropping messages the server
 * already sent to the fetch: they would sit unacknowledged until `ack_wait` and come back with a
 * higher delivery count. Draining the fetch's subscription instead tells the server to stop (it
 * skips pull requests nobody listens to) while the messages on their way still arrive, then
 * ends the fetch. Should nats.js no longer expose that subscription, wait for the fetch to expire.
 */
async function endFetch(batch: ConsumerMessages, logger: Logger): Promise<void> {
  const sub = (batch as { sub?: { drain?: () => Promise<void>; isClosed?: () => boolean } }).sub;
  if (typeof sub?.drain !== 'function') {
    await batch.closed();
    return;
  }
  try {
    if (!sub.isClosed?.()) await sub.drain();
  } catch (error) {
    // The connection is closing or closed: no message can arrive any more.
    logger.debug({ err: error }, 'could not drain a fetch; stopped it');
    batch.stop();
  }
}
