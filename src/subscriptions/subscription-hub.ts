import type { Broker, Subscription } from '../brokers/broker.js';
import { GatewayError } from '../errors.js';
import { encodeEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import type { Logger } from '../util/logger.js';

/** A subscriber fell further behind than its buffer allows and was cut off. */
export class SubscriberOverflowError extends GatewayError {
  override readonly code = 'SUBSCRIBER_TOO_SLOW';
  override readonly expose = true;
}

export interface SubscriptionHubOptions {
  /**
   * Events buffered per subscriber before it is disconnected as too slow.
   * @default 1000
   */
  bufferSize?: number;
  /**
   * Bytes (of encoded events) buffered per subscriber before it is disconnected as too slow.
   * @default 4 MiB
   */
  bufferBytes?: number;
}

interface Bounds {
  readonly events: number;
  readonly bytes: number;
}

export interface EventStream extends AsyncIterableIterator<GatewayEvent> {
  /** Ends the stream; pending `next()` calls resolve as done. */
  close(): void;
}

interface TopicEntry {
  readonly subscribers: Set<Subscriber>;
  /** The one broker subscription for this topic in this process. */
  readonly ready: Promise<Subscription>;
}

class Subscriber implements EventStream {
  private readonly buffer: GatewayEvent[] = [];
  private bufferedBytes = 0;
  private waiting: ((result: IteratorResult<GatewayEvent>) => void) | undefined;
  private done = false;
  private error: Error | undefined;

  constructor(
    private readonly types: ReadonlySet<string> | undefined,
    private readonly bounds: Bounds,
    private readonly onClose: (subscriber: Subscriber) => void,
  ) {}

  push(event: GatewayEvent): void {
    if (this.done || (this.types && !this.types.has(event.type))) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: event, done: false });
      return;
    }
    // The encoded body is cached on the event, so every subscriber of a topic shares one encoding.
    const size = encodeEvent(event).byteLength;
    if (this.buffer.length >= this.bounds.events || this.bufferedBytes + size > this.bounds.bytes) {
      this.fail(
        new SubscriberOverflowError(
          `subscriber too slow: more than ${this.bounds.events} events or ${this.bounds.bytes} bytes waiting for it`,
        ),
      );
      return;
    }
    this.buffer.push(event);
    this.bufferedBytes += size;
  }

  /** Only reached with nobody waiting (a waiting reader takes events at once): the reader meets the error next. */
  private fail(error: Error): void {
    if (this.done) return;
    this.error = error;
    this.finish();
  }

  next(): Promise<IteratorResult<GatewayEvent>> {
    const event = this.buffer.shift();
    if (event) {
      this.bufferedBytes -= encodeEvent(event).byteLength;
      return Promise.resolve({ value: event, done: false });
    }
    if (this.error) {
      const error = this.error;
      this.error = undefined;
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  async return(): Promise<IteratorResult<GatewayEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  close(): void {
    if (this.done) return;
    this.finish();
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private finish(): void {
    this.done = true;
    this.buffer.length = 0;
    this.bufferedBytes = 0;
    this.onClose(this);
  }
}

/**
 * Fan-out of broker messages to GraphQL subscribers: one broker subscription per topic per
 * process, shared by every subscriber of that topic, opened with the first subscriber and closed
 * with the last. Each subscriber has its own bounded buffer, so one slow reader cannot hold
 * events for the others or grow memory without limit.
 */
export class SubscriptionHub {
  private readonly topics = new Map<string, TopicEntry>();
  private readonly bounds: Bounds;
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly broker: Broker,
    private readonly logger: Logger,
    options: SubscriptionHubOptions = {},
  ) {
    this.bounds = { events: options.bufferSize ?? 1000, bytes: options.bufferBytes ?? 4 * 1024 * 1024 };
  }

  /** Resolves once the broker subscription for `topic` is live, so no later event is missed. */
  async subscribe(topic: string, options: { types?: readonly string[] | null | undefined } = {}): Promise<EventStream> {
    const types = options.types?.length ? new Set(options.types) : undefined;
    let entry = this.topics.get(topic);
    const subscriber = new Subscriber(types, this.bounds, (s) => this.leave(topic, s));
    if (!entry) {
      const subscribers = new Set<Subscriber>();
      const ready = this.broker.subscribe(topic, (event) => {
        for (const s of subscribers) s.push(event);
      });
      entry = { subscribers, ready };
      this.topics.set(topic, entry);
      ready.catch((error: unknown) => {
        this.logger.error({ err: error, topic }, 'could not subscribe to topic');
        if (this.topics.get(topic) === entry) this.topics.delete(topic);
      });
    }
    entry.subscribers.add(subscriber);
    try {
      await entry.ready;
    } catch (error) {
      entry.subscribers.delete(subscriber);
      throw error;
    }
    return subscriber;
  }

  /** Topics with a live broker subscription, and how many subscribers share each. */
  stats(): { topic: string; subscribers: number }[] {
    return [...this.topics].map(([topic, entry]) => ({ topic, subscribers: entry.subscribers.size }));
  }

  /** Ends every subscriber and closes the broker subscriptions. */
  async close(): Promise<void> {
    for (const entry of [...this.topics.values()]) for (const s of [...entry.subscribers]) s.close();
    await Promise.all([...this.closing]);
  }

  private leave(topic: string, subscriber: Subscriber): void {
    const entry = this.topics.get(topic);
    if (!entry || !entry.subscribers.delete(subscriber) || entry.subscribers.size > 0) return;
    this.topics.delete(topic);
    const closing = entry.ready.then(
      (subscription) => subscription.close(),
      () => undefined,
    );
    this.closing.add(closing);
    void closing.finally(() => this.closing.delete(closing));
  }
}
