import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos, type Nanos } from '@nats-io/transport-node';
import { ConfigError } from '../../errors.js';
import { backoffDelay } from '../../util/backoff.js';
import type { ConsumerBinding } from '../broker.js';
import type { NatsSession } from './connection.js';
import type { ResolvedNatsOptions } from './options.js';
import { ensureStream } from './stream.js';
import { consumerFilter, replayConsumerName, replaySubject } from './subjects.js';

/** Redelivery delays beyond this many deliveries repeat the last one (the server does the same). */
const MAX_BACKOFF_STEPS = 20;

/** The settings the adapter owns on a durable consumer; compared and updated on every attach. */
type OwnedSettings = Pick<ConsumerConfig, 'filter_subject' | 'ack_wait' | 'max_deliver' | 'backoff' | 'max_ack_pending' | 'description'>;

/**
 * A durable pull consumer for a binding (or, with `replay`, its companion reading
 * `events._replay.<name>`). Explicit acks; new messages only, from when it first exists.
 *
 * - `backoff` (when an unsettled delivery comes back): the binding's retry delays, never shorter
 *   than `ackWaitMs`; `ack_wait` is the first of them. A handler running longer than that keeps
 *   its delivery by reporting progress, so these only matter when a process died mid-delivery.
 * - `max_deliver`: `maxAttempts` plus a margin, a safety net the pipeline never reaches, since it
 *   dead-letters (and `term()`s) at `maxAttempts`.
 * - `max_ack_pending` unlimited: messages waiting out a retry delay count as pending, and must not
 *   stop new messages; each process bounds its own deliveries by its `prefetch`.
 */
export function durableConsumerConfig(
  binding: ConsumerBinding,
  options: Pick<ResolvedNatsOptions, 'ackWaitMs' | 'maxDeliverMargin'>,
  replay = false,
): Partial<ConsumerConfig> & { durable_name: string } {
  const maxDeliver = binding.maxAttempts ? binding.maxAttempts + options.maxDeliverMargin : -1;
  const backoff = redeliveryDelays(binding, maxDeliver, options.ackWaitMs);
  const owned: OwnedSettings = {
    description: replay
      ? `event-gateway: dead letters replayed to consumer ${binding.name}`
      : `event-gateway consumer ${binding.name} of topic ${binding.topic}`,
    filter_subject: replay ? replaySubject(binding.name) : consumerFilter(binding),
    ack_wait: backoff?.[0] ?? nanos(options.ackWaitMs),
    backoff,
    max_deliver: maxDeliver,
    max_ack_pending: -1,
  };
  return {
    durable_name: replay ? replayConsumerName(binding.name) : binding.name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    ...owned,
  };
}

/**
 * Delays before an unsettled delivery comes back: the binding's retry delays (without jitter),
 * one per attempt, never shorter than `ack_wait`. The server wants fewer steps than
 * `max_deliver` (so none without one); deliveries past the last step reuse it.
 */
function redeliveryDelays(binding: ConsumerBinding, maxDeliver: number, ackWaitMs: number): Nanos[] | undefined {
  if (!binding.backoff || !binding.maxAttempts || maxDeliver < 2) return undefined;
  const policy = { ...binding.backoff, jitter: 0 };
  const steps = Math.min(binding.maxAttempts, maxDeliver - 1, MAX_BACKOFF_STEPS);
  return Array.from({ length: steps }, (_, i) => nanos(Math.max(ackWaitMs, backoffDelay(policy, i + 1))));
}

/**
 * Creates the durable consumer, or updates the settings the adapter owns when they changed
 * (e.g. new `types` or `maxAttempts`); its position in the stream is kept. A configuration the
 * server refuses is a `ConfigError`; other failures are left for the caller to retry.
 */
async function ensureDurableConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig> & { durable_name: string }): Promise<ConsumerInfo> {
  const name = config.durable_name;
  try {
    const info = await consumerInfo(jsm, stream, name);
    if (!info) return await jsm.consumers.add(stream, config);
    const changes = ownedChanges(info.config, config);
    return changes ? await jsm.consumers.update(stream, name, changes) : info;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.status === 400) {
      throw new ConfigError(`consumer ${name}: NATS refused its configuration: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Ensures a binding's consumer (or, with `replay`, its replay companion, which must exist before a
 * replay is published as it only reads new messages). Should the stream itself be gone while
 * connected (deleted by an operator), it is set up again first.
 */
export async function ensureBindingConsumer(
  session: NatsSession,
  binding: ConsumerBinding,
  options: ResolvedNatsOptions,
  replay: boolean,
): Promise<ConsumerInfo> {
  const config = durableConsumerConfig(binding, options, replay);
  try {
    return await ensureDurableConsumer(session.jsm!, options.stream, config);
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    await ensureStream(session.jsm!, options);
    return ensureDurableConsumer(session.jsm!, options.stream, config);
  }
}

export async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) return undefined;
    throw error;
  }
}

function ownedChanges(current: ConsumerConfig, wanted: Partial<ConsumerConfig>): Partial<ConsumerConfig> | undefined {
  const keys = ['description', 'filter_subject', 'ack_wait', 'backoff', 'max_deliver', 'max_ack_pending'] as const;
  const changed = keys.filter((key) => JSON.stringify(current[key] ?? null) !== JSON.stringify(wanted[key] ?? null));
  return changed.length > 0 ? Object.fromEntries(changed.map((key) => [key, wanted[key]])) : undefined;
}
