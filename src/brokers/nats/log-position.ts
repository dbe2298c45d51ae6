import type { StreamInfo } from '@nats-io/jetstream';
import { CursorExpiredError, InvalidCursorError } from '../../errors.js';
import type { FanOutOptions } from '../broker.js';

/**
 * How fan-out positions map onto JetStream. The stream is one log, so there is one partition,
 * "", and an event's offset is its stream sequence. Sequences count every message of the stream,
 * so one topic's events have gaps between them (the other topics' messages): positions only grow,
 * which is all the contract asks.
 */
export const PARTITION = '';

/**
 * The identity of the stream's log: its name and when it was made. A stream deleted and made
 * again (by an operator, or by the adapter on a server that lost its store) numbers from 1 again,
 * so the same sequence would be another event.
 */
export function streamLog(info: Pick<StreamInfo, 'config' | 'created'>): string {
  return `${info.config.name}@${info.created}`;
}

/**
 * The stream sequence a resume point names (0 when it names none: the start of the stream),
 * once the point is known to belong to `log`, the stream as it is now.
 */
export function resumeSequence(after: NonNullable<FanOutOptions['after']>, log: string): number {
  if (after.log !== log) {
    throw new CursorExpiredError(
      'the NATS stream this cursor was from is gone (it was deleted and made again since); subscribe without "after" to start from now',
    );
  }
  const seq = after.point[PARTITION] ?? 0;
  if (!Number.isSafeInteger(seq) || seq < 0) throw new InvalidCursorError(`invalid cursor: ${seq} is not a position in the NATS stream`);
  return seq;
}

/**
 * Checks that a consumer asked to deliver after sequence `after` starts there. JetStream refuses
 * neither a start it no longer holds nor one past its end: it moves the start to its first
 * message, or back to its end, and reports where in the new consumer's `delivered.stream_seq`
 * (`startedAfter`). The stream has one age for all topics, so a start moved forward cannot tell
 * whether the removed messages were of this topic; the cursor is older than what the stream
 * keeps, and that is what expired means.
 */
export function checkResumed(after: number, startedAfter: number): void {
  if (startedAfter > after) {
    throw new CursorExpiredError(
      `the events after this cursor are no longer kept: the NATS stream removed them (NATS_MAX_AGE_MS) ` +
        `(cursor at sequence ${after}, the stream now starts after ${startedAfter})`,
    );
  }
  if (startedAfter < after) {
    throw new InvalidCursorError(`cursor is past the end of the NATS stream (at sequence ${after}, the stream ends at ${startedAfter})`);
  }
}
