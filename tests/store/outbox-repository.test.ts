import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { createOutboxRepository, outboxRowToEvent, type OutboxRepository } from '../../src/store/outbox-repository.js';
import { makeEvent } from '../helpers/events.js';
import { openTempStore } from '../helpers/store.js';

describe('outbox repository', () => {
  let store: ReturnType<typeof openTempStore>;
  let outbox: OutboxRepository;
  let appended = 0;

  beforeEach(() => {
    store = openTempStore();
    appended = 0;
    outbox = createOutboxRepository(store, { onAppend: () => appended++ });
  });
  afterEach(() => store.cleanup());

  const page = { limit: 100, inverted: false };

  it('writes events as PENDING rows in order and round-trips every attribute', () => {
    const event = makeEvent({ key: 'k1', subject: 's', causationId: 'c', data: { nested: [1, 'two', null] } });
    const [result] = outbox.append([event, makeEvent()]);
    expect(result!.duplicate).toBe(false);
    expect(result!.row.status).toBe('PENDING');
    expect(result!.row.attempts).toBe(0);
    expect(outboxRowToEvent(result!.row)).toEqual({ ...event, time: new Date(event.time.getTime()) });
    expect(outbox.list({}, page).map((r) => r.eventId)[0]).toBe(event.id);
    expect(appended).toBe(1);
  });

  it('treats a known event id as a duplicate and writes nothing', () => {
    const event = makeEvent();
    outbox.append([event]);
    const [again] = outbox.append([{ ...event, data: { changed: true } }]);
    expect(again!.duplicate).toBe(true);
    expect(outboxRowToEvent(again!.row).data).toEqual(event.data);
    expect(outbox.list({}, page)).toHaveLength(1);
    expect(appended).toBe(1);
  });

  it('writes all events of a batch or none', () => {
    const good = makeEvent();
    const bad = { ...makeEvent(), topic: null as unknown as string }; // violates NOT NULL mid-batch
    expect(() => outbox.append([good, bad])).toThrow();
    expect(outbox.list({}, page)).toHaveLength(0);
    expect(appended).toBe(0);
  });

  it('claims due rows oldest first and never hands one row to two relays', () => {
    outbox.append([makeEvent(), makeEvent(), makeEvent()]);
    const a = outbox.claim({ owner: 'a', limit: 2, leaseMs: 10_000 });
    const b = outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 });
    expect(a.map((r) => r.id)).toEqual([1, 2]);
    expect(b.map((r) => r.id)).toEqual([3]);
    expect(outbox.claim({ owner: 'c', limit: 10, leaseMs: 10_000 })).toEqual([]);
  });

  it('holds back later rows of a key while an earlier one is claimed or backing off', () => {
    outbox.append([makeEvent({ key: 'k' }), makeEvent({ key: 'k' }), makeEvent({ key: 'other' })]);
    const first = outbox.claim({ owner: 'a', limit: 1, leaseMs: 10_000 });
    expect(first.map((r) => r.id)).toEqual([1]);
    // Row 2 shares key k with the claimed row 1; only the other key may go.
    expect(outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 }).map((r) => r.id)).toEqual([3]);
    outbox.settle('b', [{ id: 3, ok: true }]);
    const now = Date.now();
    outbox.settle('a', [{ id: 1, ok: false, error: 'boom', retryAt: now + 60_000 }], now);
    // Row 1 now waits out a backoff, so row 2 must still wait behind it.
    expect(outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 })).toEqual([]);
    expect(outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000, now: now + 61_000 }).map((r) => r.id)).toEqual([1, 2]);
  });

  it('lets another relay take rows whose lease ran out', () => {
    outbox.append([makeEvent()]);
    const now = Date.now();
    expect(outbox.claim({ owner: 'a', limit: 10, leaseMs: 1000, now })).toHaveLength(1);
    expect(outbox.claim({ owner: 'b', limit: 10, leaseMs: 1000, now: now + 500 })).toHaveLength(0);
    expect(outbox.claim({ owner: 'b', limit: 10, leaseMs: 1000, now: now + 1500 })).toHaveLength(1);
  });

  it('settles published, retryable and permanent outcomes', () => {
    outbox.append([makeEvent(), makeEvent(), makeEvent()]);
    outbox.claim({ owner: 'r', limit: 10, leaseMs: 10_000 });
    const now = Date.now();
    outbox.settle(
      'r',
      [
        { id: 1, ok: true },
        { id: 2, ok: false, error: 'broker down', retryAt: now + 1000 },
        { id: 3, ok: false, error: 'message too large', retryAt: null },
      ],
      now,
    );
    const [one, two, three] = [outbox.get(1)!, outbox.get(2)!, outbox.get(3)!];
    expect(one.status).toBe('PUBLISHED');
    expect(one.publishedAt?.getTime()).toBe(now);
    expect(two).toMatchObject({ status: 'PENDING', attempts: 1, lastError: 'broker down', claimedBy: null });
    expect(two.nextAttemptAt.getTime()).toBe(now + 1000);
    expect(three).toMatchObject({ status: 'FAILED', attempts: 1, lastError: 'message too large' });
    expect(outbox.count('PENDING')).toBe(1);
    expect(outbox.retry(3)?.status).toBe('PENDING');
    expect(outbox.retry(1)).toBeUndefined();
  });

  it('lists by status with cursors in both directions', () => {
    outbox.append(Array.from({ length: 5 }, () => makeEvent()));
    outbox.claim({ owner: 'r', limit: 2, leaseMs: 1000 });
    outbox.settle('r', [{ id: 1, ok: true }, { id: 2, ok: true }]);
    expect(outbox.list({ status: 'PENDING' }, page).map((r) => r.id)).toEqual([3, 4, 5]);
    const first = outbox.list({}, { limit: 2, inverted: false });
    const cursor = Buffer.from(`outbox:${first[1]!.id}`).toString('base64url');
    expect(outbox.list({}, { limit: 2, inverted: false, after: cursor }).map((r) => r.id)).toEqual([3, 4]);
    expect(outbox.list({}, { limit: 2, inverted: true }).map((r) => r.id)).toEqual([5, 4]);
    expect(() => outbox.list({}, { limit: 2, inverted: false, after: 'garbage' })).toThrow(/invalid cursor/);
  });

  it('knows when a claim will next find a row: key heads and keyless rows, once due and unclaimed', () => {
    expect(outbox.nextDueAt()).toBeNull();
    const now = Date.now();
    outbox.append([makeEvent({ key: 'a' }), makeEvent({ key: 'a' }), makeEvent()]);
    const [head, , keyless] = outbox.claim({ owner: 'r', limit: 10, leaseMs: 60_000, now });
    expect(head).toBeDefined();
    // Head of "a" backs off for 5 s; the keyless row is claimed for a minute; the second "a"
    // row is due now but waits behind its head.
    outbox.settle('r', [{ id: head!.id, ok: false, error: 'x', retryAt: now + 5_000 }], now);
    expect(keyless).toBeDefined();
    expect(outbox.nextDueAt()).toBe(now + 5_000);
    outbox.release('r', [keyless!.id]);
    expect(outbox.nextDueAt()).toBeLessThanOrEqual(now);
  });

  it('prunes only PUBLISHED rows older than the retention', () => {
    outbox.append([makeEvent(), makeEvent(), makeEvent()]);
    outbox.claim({ owner: 'r', limit: 10, leaseMs: 1000 });
    const now = Date.now();
    outbox.settle('r', [{ id: 1, ok: true }, { id: 2, ok: false, error: 'x', retryAt: null }, { id: 3, ok: false, error: 'y', retryAt: now }], now - 10_000);
    expect(outbox.prunePublished(now - 5_000)).toBe(1);
    expect(outbox.list({}, page).map((r) => r.status)).toEqual(['FAILED', 'PENDING']);
  });

  it('reports a busy store as StoreUnavailableError and writes nothing', () => {
    const other = openTempStore();
    try {
      // A second connection to the same file holds the write lock.
      const Database = store.sqlite.constructor as new (path: string) => typeof store.sqlite;
      const blocker = new Database(store.path);
      blocker.pragma('busy_timeout = 0');
      store.sqlite.pragma('busy_timeout = 50');
      blocker.prepare('BEGIN IMMEDIATE').run();
      expect(() => outbox.append([makeEvent()])).toThrow(StoreUnavailableError);
      blocker.prepare('ROLLBACK').run();
      blocker.close();
      expect(outbox.list({}, page)).toHaveLength(0);
    } finally {
      other.cleanup();
    }
  });
});
