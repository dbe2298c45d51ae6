import type { GatewayEvent } from '../events/event.js';
import type { BackoffPolicy } from '../util/backoff.js';

/**
 * What a broker can promise. Tests and callers branch on these flags, never on `kind`.
 */
export interface BrokerFeatures {
  /** A confirmed message survives a restart of the broker process. */
  readonly persistent: boolean;
  /** Several gateway processes attached to one durable consumer share its messages. */
  readonly sharedConsumers: boolean;
  /** Events with the same key reach a durable consumer or subscription in publish order. */
  readonly orderedByKey: boolean;
  /** The broker itself drops a re-published event id within some window. */
  readonly publishDeduplication: boolean;
  /** `ConsumerHandle.lag()` reports a number. */
  readonly lag: boolean;
  /** Durable consumers (ack, delayed retry, dead-letter) are available. */
  readonly durableConsumers: boolean;
  /**
   * Fan-out subscriptions carry log positions and can start after a given point
   * (`FanOutOptions.after`): a subscriber resumes where it left off.
   */
  readonly replay: boolean;
}

/**
 * Where an event sits in its topic's log at the broker: `partition` names a part of the log with an
 * order of its own (a Kafka partition; "" where the topic is one log), `offset` grows with every
 * event in that part (not always by one).
 */
export interface LogPosition {
  readonly partition: string;
  readonly offset: number;
}

/** A point in a topic's log: for each partition it names, the offset of the last event before it. */
export type LogPoint = Readonly<Record<string, number>>;

export interface FanOutOptions {
  /**
   * Deliver the events after this point first, in log order per partition, then live ones. `log`
   * is the identity a subscription of this topic reported (`Subscription.log`): a point in another
   * log (a stream deleted and made again, a memory broker that restarted) is refused with
   * `CursorExpiredError`, and so is one older than what the broker keeps; a point past the end of
   * the log is refused with `InvalidCursorError`. Partitions the point does not name start at
   * their beginning.
   */
  readonly after?: { readonly log: string; readonly point: LogPoint };
}

/** What a durable consumer asks of the broker: where its messages come from. */
export interface ConsumerBinding {
  /** Unique, stable consumer name; the broker keeps its position/queue under this name. */
  readonly name: string;
  readonly topic: string;
  /** Event types to receive; empty or absent means all types of the topic. */
  readonly types?: readonly string[] | undefined;
  /**
   * Most messages this attachment holds delivered and not yet settled (RabbitMQ prefetch, the
   * JetStream pull size, what is taken from a Kafka fetch). The sink decides how many run at once;
   * a window above that keeps the next message at hand when one finishes, instead of a round trip
   * away.
   */
  readonly window: number;
  /**
   * The pipeline's limits, for broker-side safety nets only (e.g. JetStream `max_deliver` above
   * `maxAttempts`, redelivery delays after an ack timeout). The pipeline decides retries and
   * dead letters; an adapter never dead-letters on its own count.
   */
  readonly maxAttempts?: number | undefined;
  readonly backoff?: BackoffPolicy | undefined;
}

/** One delivery of a message to a durable consumer. */
export interface Delivery {
  readonly event: GatewayEvent;
  /** 1 on the first delivery; the count of handler runs so far plus one, as the broker carried it. */
  readonly attempt: number;
  /**
   * Set when the message could not be decoded; `event` is then a stand-in holding the raw body
   * and the pipeline dead-letters it without running the handler.
   */
  readonly invalid?: Error | undefined;
}

/**
 * A delivery as an adapter hands it over, with how to settle it at the broker it came from.
 */
export interface InboundDelivery extends Delivery {
  /** Ids that find the message again at the broker (queue, subject and sequence, partition and offset), for logs. */
  readonly ids: Readonly<Record<string, unknown>>;
  /**
   * Carries out a settlement at the broker; called exactly once per delivery. Resolves once it is
   * done and never rejects: a settlement that cannot be carried out is logged by the adapter with
   * `ids`, and the broker delivers the message again.
   */
  settle(settlement: Settlement): Promise<void>;
  /**
   * Called when work on the delivery starts; returns what to call when it is settled. For brokers
   * that redeliver a message held too long without news (JetStream's ack_wait): report progress.
   */
  started?(): () => void;
}

/**
 * Where an adapter hands deliveries over: the consumer's delivery runtime, which owns how many run
 * at once, per-key order and bounded queues (`src/consumers/delivery-runtime.ts`).
 */
export interface DeliverySink {
  /** Takes one delivery; its `settle` will be called exactly once. Never throws. */
  push(delivery: InboundDelivery): void;
  /** Resolves once every delivery pushed so far is settled. */
  idle(): Promise<void>;
}

/** How a delivery ends. Decided by the consumer's pipeline, carried out by the adapter. */
export type Settlement =
  | { readonly kind: 'ack' }
  /** Deliver the same message to this consumer again after `delayMs`, with `attempt + 1`. */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: string }
  /**
   * Stop delivering the message to this consumer. The pipeline has already recorded the dead
   * letter in the store, which replay reads; an adapter may also keep a broker-side copy
   * (`<consumer>.dlq` on RabbitMQ and Kafka) for operators who read the broker directly.
   */
  | { readonly kind: 'dead-letter'; readonly error: string };

export interface ConsumerHandle {
  /** Messages waiting for this consumer at the broker, or null when the broker cannot tell. */
  lag(): Promise<number | null>;
  /**
   * Stops taking new deliveries, waits for the sink to settle those it holds (`DeliverySink.idle`),
   * then detaches. Unsettled messages stay with the broker and are delivered again. Resolves,
   * never rejects.
   */
  close(): Promise<void>;
}

export interface Subscription {
  /**
   * Identity of the log the positions belong to, for a resume point to name; null where events
   * carry no position (a broker without replay).
   */
  readonly log: string | null;
  /**
   * The point after which this subscription delivers, for partitions where the broker told: a
   * subscription from "now" starts after the log's end as it was then; one with `after` starts
   * there.
   */
  readonly start: LogPoint;
  /** Stops delivery. Resolves, never rejects. */
  close(): Promise<void>;
}

export interface BrokerConnectionStatus {
  readonly connected: boolean;
  readonly lastError: string | null;
}

/**
 * A message broker as the gateway uses it. One instance is one connection of one gateway process;
 * all methods may be called concurrently.
 *
 * Adapters map gateway topics onto their own dialect (routing keys, subjects, partitions);
 * nothing outside `src/brokers/<kind>/` sees that dialect. Adapters reconnect by themselves and
 * re-establish every subscription and consumer after a reconnect; callers never re-subscribe.
 */
export interface Broker {
  readonly kind: string;
  readonly features: BrokerFeatures;

  /**
   * Starts connecting and resolves once connected. Rejects only for a problem another attempt
   * cannot fix (bad configuration, a missing broker capability); a broker that is merely down
   * keeps being retried in the background while `status().connected` is false.
   */
  connect(): Promise<void>;

  /**
   * Publishes a batch durably. Resolves when the broker has confirmed every event (publisher
   * confirms, acks=-1, JetStream acks). Rejects with `PublishError`, whose `failures` lists the
   * events that were not confirmed (the others were), or with any other error when none was. The relay never puts two events of one key
   * in one call (see `Relay`), so an adapter may send a batch's events concurrently.
   */
  publish(events: readonly GatewayEvent[]): Promise<void>;

  /**
   * Ephemeral fan-out: calls `onEvent` for events published to `topic` from now on (or after
   * `options.after`), at most once each, in log order per partition, without joining any durable
   * consumer. Each event comes with its position in the log when the broker has `replay`, else
   * null. The gateway opens one per topic per process and shares it between all GraphQL
   * subscribers, plus one per subscriber that resumes until it has caught up
   * (see `SubscriptionHub`).
   */
  subscribe(topic: string, onEvent: (event: GatewayEvent, position: LogPosition | null) => void, options?: FanOutOptions): Promise<Subscription>;

  /**
   * Attaches to the durable consumer `binding.name`, creating it on first use, and hands its
   * deliveries to `sink`, holding at most `binding.window` unsettled at once. Messages published
   * to the topic after the consumer first existed are kept for it while no process is attached.
   * Every delivery is settled through its own `settle`: ack, retry after a delay, or dead-letter.
   * Several attachments to one name (in one or more processes) share the messages.
   */
  consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle>;

  /**
   * Delivers `event` to the durable consumer `binding.name` only (never to other consumers or
   * subscriptions) as a first attempt. Used to replay dead letters. Resolves once the broker holds it.
   */
  redeliver(binding: ConsumerBinding, event: GatewayEvent): Promise<void>;

  status(): BrokerConnectionStatus;

  /**
   * Stops consumers (draining in-flight handler calls as `ConsumerHandle.close` does), closes
   * subscriptions, waits for outstanding publishes to be confirmed or failed, then disconnects.
   */
  close(): Promise<void>;
}
