import type { Channel, Message } from 'amqplib';

/** Where RabbitMQ tells a stream consumer the offset of each message. */
const OFFSET_HEADER = 'x-stream-offset';

/** A prefetch is required on streams; the probe only needs the last chunk. */
const PROBE_PREFETCH = 1000;

/** Once the last chunk starts arriving, its remaining messages follow at once. */
const CHUNK_QUIET_MS = 50;

/** The stream offset of a message delivered from a stream queue. */
export function streamOffset(message: Message): number | undefined {
  const offset: unknown = message.properties.headers?.[OFFSET_HEADER];
  return typeof offset === 'number' && Number.isSafeInteger(offset) ? offset : undefined;
}

/**
 * Whether events may be missing between `point` (the offset of the last event a subscriber had)
 * and `first`, the first offset a consumer started at `point` receives after it.
 *
 * Offsets grow but are not dense: a stream takes an offset of its own at the start of each
 * segment. When retention has dropped the segment of `point`, the first event kept may therefore
 * sit at `point + 2` with nothing lost, and that cannot be told from one event lost. It counts as
 * a gap: refusing a cursor at the very edge of retention is safe, resuming across a lost event is
 * not.
 */
export function missedBetween(point: number, first: number): boolean {
  return first > point + 1;
}

/**
 * The highest offset in the stream's last chunk, or null when nothing arrives within `waitMs`
 * (an empty stream). Reads with a throwaway consumer from `last` on `channel`.
 */
export async function lastOffset(channel: Channel, queue: string, waitMs: number): Promise<number | null> {
  await channel.prefetch(PROBE_PREFETCH);
  let highest: number | null = null;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let quiet: NodeJS.Timeout | undefined;
  const limit = setTimeout(finish, waitMs);
  let consumerTag: string | undefined;
  try {
    ({ consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (!message) return finish();
        channel.ack(message);
        const offset = streamOffset(message);
        if (offset !== undefined && (highest === null || offset > highest)) highest = offset;
        clearTimeout(quiet);
        quiet = setTimeout(finish, CHUNK_QUIET_MS);
      },
      { arguments: { [OFFSET_HEADER]: 'last' } },
    ));
    await done;
    // Cancelled before the channel closes: RabbitMQ 3.10 counts a stream consumer whose channel
    // closed as a consumer for ever.
    await channel.cancel(consumerTag);
    return highest;
  } finally {
    clearTimeout(limit);
    clearTimeout(quiet);
  }
}
