import type { ConsumerBinding } from '../broker.js';

/**
 * How gateway topics map onto NATS subjects. Nothing outside `src/brokers/nats/` sees these.
 *
 *   events.<topic>.<type>        an event (`events.orders.order.created`); the stream captures `events.>`
 *   events._replay.<consumer>    a dead letter replayed to one durable consumer
 *
 * Topics start with a letter or digit (`TOPIC_PATTERN`), so `_replay` can never be a topic and no
 * topic filter (`events.<topic>.>`) ever matches a replay.
 */
const ROOT = 'events';

/** What the stream stores: every event and every replay. */
export const STREAM_SUBJECTS = `${ROOT}.>`;

export function eventSubject(event: { readonly topic: string; readonly type: string }): string {
  return `${ROOT}.${event.topic}.${event.type}`;
}

/** Every event of a topic, whatever its type (types may have several dot-separated words). */
export function topicSubjects(topic: string): string {
  return `${ROOT}.${topic}.>`;
}

/**
 * A durable consumer's filter: the exact subject when it wants one type, else the whole topic
 * (JetStream 2.9 allows one filter per consumer; the pipeline's type filter acks the other types).
 */
export function consumerFilter(binding: Pick<ConsumerBinding, 'topic' | 'types'>): string {
  const types = binding.types ?? [];
  return types.length === 1 ? eventSubject({ topic: binding.topic, type: types[0]! }) : topicSubjects(binding.topic);
}

/** Where dead letters replayed to `consumer` go; only that consumer's companion reads it. */
export function replaySubject(consumer: string): string {
  return `${ROOT}._replay.${consumer}`;
}

/**
 * The durable consumer that reads a consumer's replays. Consumer names start with a letter or
 * digit, so the `_replay_` prefix cannot collide with another consumer's name.
 */
export function replayConsumerName(consumer: string): string {
  return `_replay_${consumer}`;
}
