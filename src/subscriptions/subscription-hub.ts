import type { Broker, LogPoint, LogPosition, Subscription } from '../brokers/broker.js';
import { SETTING_DEFAULTS } from '../config/config.js';
import { CursorExpiredError, GatewayError } from '../errors.js';
import { encodeEvent } from '../events/codec.js';
import type { GatewayEvent } from '../events/event.js';
import { BoundedQueue } from '../util/bounded-queue.js';
import type { Logger } from '../util/logger.js';
import { decodeSubscriptionCursor, encodeSubscriptionCursor } from './cursor.js';

/** A subscriber fell further behind than its buffer allows and was cut off. */
export class SubscriberOverflowError extends GatewayError {
  override readonly code = 'SUBSCRIBER_TOO_SLOW';
  override readonly expose = true;
}

/** One event as a subscriber receives it, with the cursor to resume after it. */
export interface DeliveredEvent {
  readonly event: GatewayEvent;
  /** Opaque; null where the broker keeps no positions (core NATS). */
  readonly cursor: string | null;
}

export interface AttachOptions {
  /** Only these event types; absent or empty: all. */
  readonly types?: readonly string[] | null | undefined;
  /** Resume after this cursor: the events after it first, then live ones. */
  readonly after?: string | null | undefined;
  /**
   * For a resuming attachment: called once it has caught up with the topic's shared feed (see
   * `attach`); the attachment then delivers nothing more and is closed.
   */
  readonly onCaughtUp?: () => void;
}

/** One subscriber's hold on a topic. */
export interface Attachment {
  close(): void;
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

type FeedListener = (delivered: DeliveredEvent, position: LogPosition | null) => void;

/**
 * The one broker subscription of a topic in this process, shared by every subscriber of the
 * topic: opened with the first, closed with the last. It knows where it is in the broker's log
 * (`head`: per partition, the offset of the last event it delivered, or where it started), which
 * is what a resuming subscriber catches up with.
 */
class TopicFeed {
  readonly listeners = new Set<FeedListener>();
  readonly ready: Promise<Subscription>;
  readonly head = new Map<string, number>();
  log: string | null = null;

  constructor(broker: Broker, topic: string) {
    this.ready = broker
      .subscribe(topic, (event, position) => {
        if (position) this.head.set(position.partition, position.offset);
        const delivered: DeliveredEvent = { event, cursor: this.cursor() };
        for (const listener of this.listeners) listener(delivered, position);
      })
      .then((subscription) => {
        this.log = subscription.log;
        for (const [partition, offset] of Object.entries(subscription.start)) if (!this.head.has(partition)) this.head.set(partition, offset);
        return subscription;
      });
  }

  cursor(): string | null {
    return this.log === null ? null : encodeSubscriptionCursor({ log: this.log, point: Object.fromEntries(this.head) });
  }

  /** True when `point` names exactly where this feed is: nothing delivered on one side is missing on the other. */
  isAt(point: ReadonlyMap<string, number>): boolean {
    if (point.size !== this.head.size) return false;
    for (const [partition, offset] of this.head) if (point.get(partition) !== offset) return false;
    return true;
  }
}

/**
 * Fan-out of broker messages to GraphQL subscribers: one broker subscription per topic per
 * process (`TopicFeed`), shared by every subscriber of that topic.
 *
 * A subscriber that resumes after a cursor gets a broker subscription of its own, starting there,
 * until it has caught up with the shared feed: the moment its own position and the feed's are the
 * same point of the log, it switches over and its own subscription closes. Until then it receives
 * from its own subscription only, so nothing is missed at the handover and nothing is repeated.
 * Positions are the broker's (stream sequences, partition offsets), so a cursor from one gateway
 * process resumes on any other one on the same broker.
 */
export class SubscriptionHub {
  private readonly topics = new Map<string, TopicFeed>();
  private readonly bounds: SubscriberBounds;
  private readonly closing = new Set<Promise<void>>();
  private readonly streams = new Set<EventStream>();

  constructor(
    private readonly broker: Broker,
    private readonly logger: Logger,
    options: SubscriptionHubOptions = {},
  ) {
    this.bounds = { events: options.bufferSize ?? SETTING_DEFAULTS.subscriberBuffer, bytes: options.bufferBytes ?? SETTING_DEFAULTS.subscriberBufferBytes };
  }

  /**
   * Calls `onEvent` for every event of `topic` (of `types`) from now on, or after `after` first.
   * Resolves once the broker subscriptions are live, so no later event is missed. Rejects with
   * `CursorExpiredError` / `InvalidCursorError` for a cursor the broker cannot resume from.
   */
  async attach(topic: string, onEvent: (delivered: DeliveredEvent) => void, options: AttachOptions = {}): Promise<Attachment> {
    const types = options.types?.length ? new Set(options.types) : undefined;
    const wanted = types ? (d: DeliveredEvent) => types.has(d.event.type) : () => true;
    const feed = this.feedOf(topic);
    let listener: FeedListener | undefined;
    const detach = () => {
      if (listener) feed.listeners.delete(listener);
      listener = undefined;
      this.releaseIfUnused(topic, feed);
    };
    if (!options.after) {
      listener = (delivered) => {
        if (wanted(delivered)) onEvent(delivered);
      };
      feed.listeners.add(listener);
      try {
        await feed.ready;
      } catch (error) {
        detach();
        throw error;
      }
      return { close: detach };
    }
    const listen = (l: FeedListener) => {
      listener = l;
      feed.listeners.add(l);
    };
    return this.resume(topic, feed, options.after, { onEvent, wanted, onCaughtUp: options.onCaughtUp, listen, detach });
  }

  /**
   * `attach` as an async iterator with the subscriber's bounded buffer, for callers that pull
   * (GraphQL execution per subscriber). Past `SUBSCRIBER_BUFFER` events or bytes waiting, the
   * next read fails with `SubscriberOverflowError`.
   */
  async subscribe(topic: string, options: Omit<AttachOptions, 'onCaughtUp'> = {}): Promise<EventStream> {
    let attachment: Attachment | undefined;
    const stream: EventStream = createSubscriberQueue(this.bounds, encodedSize, () => {
      attachment?.close();
      this.streams.delete(stream);
    });
    try {
      attachment = await this.attach(topic, (delivered) => stream.push(delivered), options);
    } catch (error) {
      stream.close();
      throw error;
    }
    // Cut off while catching up (before there was an attachment to close): let go of it now.
    if (stream.ended) attachment.close();
    else this.streams.add(stream);
    return stream;
  }

  /** Topics with a live broker subscription, and how many subscribers share each. */
  stats(): { topic: string; subscribers: number }[] {
    return [...this.topics].map(([topic, feed]) => ({ topic, subscribers: feed.listeners.size }));
  }

  /** Ends every subscriber and closes the broker subscriptions. */
  async close(): Promise<void> {
    for (const stream of [...this.streams]) stream.close();
    for (const [topic, feed] of [...this.topics]) {
      feed.listeners.clear();
      this.releaseIfUnused(topic, feed);
    }
    await Promise.all([...this.closing]);
  }

  private async resume(
    topic: string,
    feed: TopicFeed,
    cursor: string,
    hooks: {
      onEvent: (delivered: DeliveredEvent) => void;
      wanted: (delivered: DeliveredEvent) => boolean;
      onCaughtUp: (() => void) | undefined;
      listen: (listener: FeedListener) => void;
      detach: () => void;
    },
  ): Promise<Attachment> {
    const { log, point } = decodeSubscriptionCursor(cursor);
    /** Where this subscriber is: per partition, the offset of the last event it was handed. */
    const at = new Map(Object.entries(point));
    let own: Subscription | undefined;
    let state: 'catching up' | 'live' | 'closed' = 'catching up';
    const closeOwn = () => {
      const subscription = own;
      own = undefined;
      if (subscription) this.track(subscription.close());
    };
    const caughtUp = () => {
      if (state !== 'catching up' || !own || !feed.isAt(at)) return;
      closeOwn();
      if (hooks.onCaughtUp) {
        state = 'closed';
        hooks.detach();
        hooks.onCaughtUp();
      } else {
        state = 'live';
      }
    };
    // Registered before the own subscription opens: from here on every feed event is seen, and the
    // feed's listeners run in order, so a subscriber switching over on an event after someone else
    // already forwarded it (the shared execution of its group) does not get it twice.
    hooks.listen((delivered) => {
      if (state === 'live') {
        if (hooks.wanted(delivered)) hooks.onEvent(delivered);
      } else caughtUp();
    });
    try {
      const shared = await feed.ready;
      if (shared.log === null) {
        throw new CursorExpiredError(`the ${this.broker.kind} broker keeps no positions to resume from; subscribe without "after"`);
      }
      own = await this.broker.subscribe(
        topic,
        (event, position) => {
          if (state !== 'catching up' || !position) return;
          if (position.offset <= (at.get(position.partition) ?? -1)) return;
          at.set(position.partition, position.offset);
          const delivered: DeliveredEvent = { event, cursor: encodeSubscriptionCursor({ log: shared.log!, point: Object.fromEntries(at) as LogPoint }) };
          if (hooks.wanted(delivered)) hooks.onEvent(delivered);
          caughtUp();
        },
        { after: { log, point } },
      );
      // A subscriber that was already where the feed is (nothing published since) is live at once.
      caughtUp();
    } catch (error) {
      state = 'closed';
      hooks.detach();
      throw error;
    }
    return {
      close: () => {
        state = 'closed';
        closeOwn();
        hooks.detach();
      },
    };
  }

  private feedOf(topic: string): TopicFeed {
    let feed = this.topics.get(topic);
    if (!feed) {
      feed = new TopicFeed(this.broker, topic);
      this.topics.set(topic, feed);
      const created = feed;
      feed.ready.catch((error: unknown) => {
        this.logger.error({ err: error, topic }, 'could not subscribe to topic');
        if (this.topics.get(topic) === created) this.topics.delete(topic);
      });
    }
    return feed;
  }

  private releaseIfUnused(topic: string, feed: TopicFeed): void {
    if (feed.listeners.size > 0 || this.topics.get(topic) !== feed) return;
    this.topics.delete(topic);
    this.track(
      feed.ready.then(
        (subscription) => subscription.close(),
        () => undefined,
      ),
    );
  }

  /** Keeps a broker subscription's closing until it settles; a failure is logged, never left unhandled. */
  private track(closing: Promise<void>): void {
    const tracked = closing.catch((error: unknown) => this.logger.warn({ err: error }, 'closing a broker subscription failed'));
    this.closing.add(tracked);
    void tracked.finally(() => this.closing.delete(tracked));
  }
}

/** What may wait for one subscriber that reads slowly (`SUBSCRIBER_BUFFER`, `SUBSCRIBER_BUFFER_BYTES`). */
export interface SubscriberBounds {
  readonly events: number;
  readonly bytes: number;
}

/**
 * The queue between the fan-out and one subscriber that pulls (hub streams, SSE responses): past
 * its bounds it fails with `SubscriberOverflowError`, dropping what waits, instead of growing memory.
 */
export function createSubscriberQueue<T>(bounds: SubscriberBounds, sizeOf: (value: T) => number, onEnd: () => void): BoundedQueue<T> {
  return new BoundedQueue<T>({
    items: bounds.events,
    bytes: bounds.bytes,
    sizeOf,
    overflow: () => new SubscriberOverflowError(`subscriber too slow: more than ${bounds.events} events or ${bounds.bytes} bytes waiting for it`),
    onEnd,
  });
}

/** A subscriber that pulls, from `SubscriptionHub.subscribe`. */
export type EventStream = BoundedQueue<DeliveredEvent>;

/** The encoded body is cached on the event, so every subscriber of a topic shares one encoding. */
function encodedSize(delivered: DeliveredEvent): number {
  return encodeEvent(delivered.event).byteLength;
}
