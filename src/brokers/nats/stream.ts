import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ConfigError } from '../../errors.js';
import type { Logger } from '../../util/logger.js';
import type { ResolvedNatsOptions } from './options.js';
import { STREAM_SUBJECTS } from './subjects.js';

/**
 * The settings the gateway owns on its stream. File storage and limits retention: the stream is
 * the log every consumer reads at its own pace; `max_age` (0 = forever) is the only expiry.
 */
function streamSettings(options: ResolvedNatsOptions): Pick<StreamConfig, 'max_age' | 'duplicate_window'> {
  const maxAgeMs = options.maxAgeMs;
  // The server refuses a duplicate window longer than max_age.
  const windowMs = maxAgeMs > 0 ? Math.min(options.duplicateWindowMs, maxAgeMs) : options.duplicateWindowMs;
  return { max_age: nanos(maxAgeMs), duplicate_window: nanos(windowMs) };
}

/**
 * Creates the stream, or brings an existing one to the configured settings (keeping any subjects
 * an operator added). A configuration the server refuses (e.g. another stream already owns
 * `events.>`) is a `ConfigError`; other failures are left for the caller to retry.
 */
export async function ensureStream(jsm: JetStreamManager, options: ResolvedNatsOptions): Promise<StreamInfo> {
  const name = options.stream;
  const wanted = streamSettings(options);
  try {
    const info = await streamInfo(jsm, name);
    if (!info) {
      return await jsm.streams.add({
        name,
        description: 'event-gateway events',
        subjects: [STREAM_SUBJECTS],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        ...wanted,
      });
    }
    const subjects = info.config.subjects ?? [];
    const current = info.config;
    if (subjects.includes(STREAM_SUBJECTS) && current.max_age === wanted.max_age && current.duplicate_window === wanted.duplicate_window) {
      return info;
    }
    const update = { ...current, ...wanted, subjects: subjects.includes(STREAM_SUBJECTS) ? subjects : [...subjects, STREAM_SUBJECTS] };
    return await jsm.streams.update(name, update);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.status === 400) {
      throw new ConfigError(`NATS_STREAM ${name}: the server refused the stream configuration: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}

/**
 * JetStream expires messages by one `max_age` per stream; servers before 2.11 have no
 * per-message TTL and none has a per-subject age. Topics asking for their own `ttlMs` are named
 * once, so nobody believes their events expire sooner than they do.
 */
export function warnAboutTopicTtls(options: ResolvedNatsOptions, logger: Logger): void {
  const topics = Object.entries(options.topics)
    .filter(([, settings]) => settings.ttlMs !== undefined)
    .map(([topic]) => topic);
  if (topics.length === 0) return;
  logger.warn(
    { topics, stream: options.stream, maxAgeMs: options.maxAgeMs },
    `NATS JetStream cannot expire one topic sooner than the rest of its stream: ttlMs of ${topics.join(', ')} is not applied; ` +
      'events are kept until the stream-wide NATS_MAX_AGE_MS (0 = forever)',
  );
}
