import type { LogPoint } from '../brokers/broker.js';
import { InvalidCursorError } from '../errors.js';

/** What a subscription cursor names: a point in one broker log. */
export interface CursorValue {
  /** The log's identity (`Subscription.log`): a stream, a topic, a memory broker's epoch. */
  readonly log: string;
  readonly point: LogPoint;
}

/**
 * Cursors are opaque to clients (base64url of a small JSON document); they name the broker log
 * and, per partition, the offset of the last event delivered. A gateway on another host reads the
 * same cursor the same way: the position is the broker's, not this process's.
 */
export function encodeSubscriptionCursor(value: CursorValue): string {
  return Buffer.from(JSON.stringify({ l: value.log, p: value.point })).toString('base64url');
}

export function decodeSubscriptionCursor(cursor: string): CursorValue {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError(`invalid cursor "${cursor.slice(0, 100)}": not one this gateway made`);
  }
  const { l, p } = (json ?? {}) as { l?: unknown; p?: unknown };
  const valid =
    typeof l === 'string' &&
    typeof p === 'object' &&
    p !== null &&
    Object.values(p).every((offset) => Number.isSafeInteger(offset) && (offset as number) >= -1);
  if (!valid) throw new InvalidCursorError(`invalid cursor "${cursor.slice(0, 100)}": not one this gateway made`);
  return { log: l, point: p as LogPoint };
}
