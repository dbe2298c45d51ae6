import type { Channel, Options } from 'amqplib';
import type { TopicSettings } from '../../config/config.js';
import type { GatewayEvent } from '../../events/event.js';
import type { ConsumerBinding } from '../broker.js';
import { declarationFailed } from './errors.js';

/**
 * Where gateway topics live on RabbitMQ, and the only place that knows it:
 *
 * - one durable topic exchange (`RABBITMQ_EXCHANGE`, default `events`); an event's routing key is
 *   `<topic>.<type>`;
 * - a durable consumer is the durable queue `<consumer>`, bound with `<topic>.#` (all types) or
 *   `<topic>.<type>` per listed type;
 * - its delayed retries wait in `<consumer>.retry.<bucket>` queues, whose dead-letter exchange
 *   (the default exchange) hands an expired message back to `<consumer>` and nobody else;
 * - its dead letters go to the durable queue `<consumer>.dlq`;
 * - fan-out subscriptions of a topic read the durable stream queue `<exchange>.stream.<topic>`,
 *   bound with `<topic>.#`, made by the first subscription and kept afterwards: it holds the
 *   topic's events for `x-max-age` so a subscriber can resume. Topics and consumer names contain
 *   no dots, so this name never meets a consumer's queues.
 */
export class Topology {
  /**
   * Retry and dead-letter queues already declared on a channel: a settlement then sends its copy
   * without a declaration round trip per message. A failed settlement forgets the channel's
   * (`forget`), so a queue someone deleted is declared again on the next try.
   */
  private readonly declared = new WeakMap<Channel, Set<string>>();

  constructor(
    readonly exchange: string,
    private readonly topics: Readonly<Record<string, TopicSettings>>,
    private readonly streams: StreamRetention,
  ) {}

  /** The arguments a durable consumer's queue of `topic` carries (`x-message-ttl`). */
  queueArguments(topic: string): Record<string, unknown> {
    const ttlMs = this.topics[topic]?.ttlMs;
    return ttlMs === undefined ? {} : { 'x-message-ttl': ttlMs };
  }

  /** The stream queue fan-out subscriptions of `topic` read. */
  streamQueue(topic: string): string {
    return `${this.exchange}.stream.${topic}`;
  }

  /**
   * The arguments of a topic's stream. Streams know no per-message TTL: a topic's `ttlMs` becomes
   * the stream's `x-max-age` instead, in whole seconds (RabbitMQ takes only a string with a unit).
   * Retention drops whole segments once every event in one is older than that, so small segments
   * let a quiet topic's old events go; the segment being written is always kept.
   */
  streamArguments(topic: string): Record<string, unknown> {
    const ttlMs = this.topics[topic]?.ttlMs;
    return {
      'x-queue-type': 'stream',
      'x-max-age': ttlMs === undefined ? this.streams.maxAge : `${Math.max(1, Math.ceil(ttlMs / 1000))}s`,
      'x-stream-max-segment-size-bytes': this.streams.maxSegmentSizeBytes,
    };
  }

  async declareExchange(channel: Channel): Promise<void> {
    try {
      await channel.assertExchange(this.exchange, 'topic', { durable: true });
    } catch (error) {
      throw declarationFailed(error, `exchange "${this.exchange}"`);
    }
  }

  /** The consumer's queue, its bindings and its dead-letter queue; safe to repeat. */
  async declareConsumer(channel: Channel, binding: Pick<ConsumerBinding, 'name' | 'topic' | 'types'>): Promise<void> {
    await this.declareExchange(channel);
    await declareQueue(channel, binding.name, { durable: true, arguments: this.queueArguments(binding.topic) });
    for (const key of bindingKeys(binding)) await bindQueue(channel, binding.name, this.exchange, key);
    await declareQueue(channel, deadLetterQueue(binding.name), { durable: true });
  }

  /**
   * The retry queue for delays up to `bucketMs`. Messages carry their own delay (`expiration`);
   * when it runs out, RabbitMQ dead-letters them through the default exchange straight into the
   * consumer's queue. No `x-message-ttl` here: the topic's TTL applies once the message is back.
   */
  async declareRetryQueue(channel: Channel, consumer: string, bucketMs: number): Promise<string> {
    const queue = retryQueue(consumer, bucketMs);
    await this.declareOnce(channel, queue, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': consumer },
    });
    return queue;
  }

  async declareDeadLetterQueue(channel: Channel, consumer: string): Promise<string> {
    const queue = deadLetterQueue(consumer);
    await this.declareOnce(channel, queue, { durable: true });
    return queue;
  }

  /** Declares again, on the next settlement, every queue declared on `channel`. */
  forget(channel: Channel): void {
    this.declared.delete(channel);
  }

  private async declareOnce(channel: Channel, queue: string, options: Options.AssertQueue): Promise<void> {
    let queues = this.declared.get(channel);
    if (queues?.has(queue)) return;
    await declareQueue(channel, queue, options);
    if (!queues) this.declared.set(channel, (queues = new Set()));
    queues.add(queue);
  }

  /**
   * The topic's stream, bound to every type of `topic`; safe to repeat. A stream must be durable,
   * neither exclusive nor auto-delete (RabbitMQ refuses those with 406).
   */
  async declareStream(channel: Channel, topic: string): Promise<string> {
    await this.declareExchange(channel);
    const queue = this.streamQueue(topic);
    await declareQueue(channel, queue, { durable: true, arguments: this.streamArguments(topic) });
    await bindQueue(channel, queue, this.exchange, `${topic}.#`);
    return queue;
  }
}

/** How long topics' streams keep events, unless a topic's `ttlMs` says otherwise. */
export interface StreamRetention {
  /** `x-max-age`: a number and a unit, one of Y, M, D, h, m, s (e.g. '7D'). */
  readonly maxAge: string;
  /** `x-stream-max-segment-size-bytes`. */
  readonly maxSegmentSizeBytes: number;
}

export function routingKey(event: Pick<GatewayEvent, 'topic' | 'type'>): string {
  return `${event.topic}.${event.type}`;
}

function bindingKeys(binding: Pick<ConsumerBinding, 'topic' | 'types'>): string[] {
  return binding.types?.length ? binding.types.map((type) => `${binding.topic}.${type}`) : [`${binding.topic}.#`];
}

function deadLetterQueue(consumer: string): string {
  return `${consumer}.dlq`;
}

export function retryQueue(consumer: string, bucketMs: number): string {
  return `${consumer}.retry.${bucketMs}`;
}

/**
 * The retry bucket of a delay: the smallest power of two (in ms) at or above it. RabbitMQ only
 * expires the message at the head of a queue, so a long delay would hold up a short one queued
 * behind it; within one bucket delays differ by less than a factor of two, which bounds that
 * hold-up: a retry never waits more than twice its delay.
 */
export function retryBucket(delayMs: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, delayMs)));
}

async function declareQueue(channel: Channel, queue: string, options: Options.AssertQueue) {
  try {
    return await channel.assertQueue(queue, options);
  } catch (error) {
    throw declarationFailed(error, `queue "${queue}"`);
  }
}

async function bindQueue(channel: Channel, queue: string, exchange: string, key: string): Promise<void> {
  try {
    await channel.bindQueue(queue, exchange, key);
  } catch (error) {
    throw declarationFailed(error, `binding of queue "${queue}" to "${exchange}" with "${key}"`);
  }
}
