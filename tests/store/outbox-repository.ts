import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { outboxRowToEvent, type ClaimedRow, type OutboxRepository } from '../../src/store/outbox-repository.js';
import { makeEvent } from '../helpers/events.js';
import type { StoreDialect, TestStore } from '../helpers/store.js';

export function defineOutboxRepositorySuite(dialect: StoreDialect): void {
  describe(`outbox repository (${dialect.name})`, () => {
    let store: TestStore;
    let outbox: OutboxRepository;
    let changes = 0;

    beforeEach(async () => {
      store = await dialect.open();
      changes = 0;
      store.onOutboxChange(() => changes++);
      outbox = store.outbox;
    });
    afterEach(() => store.cleanup());

    const page = { limit: 100, inverted: false };
    const ids = (rows: { id: number }[]) => rows.map((r) => r.id);

    it('writes events as PENDING rows in order and round-trips every attribute', async () => {
      const event = makeEvent({ key: 'k1', subject: 's', causationId: 'c', data: { nested: [1, 'two', null] } });
      const [result] = await outbox.append([event, makeEvent()]);
      expect(result!.duplicate).toBe(false);
      const row = (await outbox.get(result!.id))!;
      expect(row).toMatchObject({ status: 'PENDING', attempts: 0, eventId: event.id });
      expect(outboxRowToEvent(row)).toEqual({ ...event, time: new Date(event.time.getTime()) });
      expect((await outbox.list({}, page)).map((r) => r.eventId)[0]).toBe(event.id);
      expect(changes).toBe(1);
    });

    it('treats a known event id as a duplicate and writes nothing', async () => {
      const event = makeEvent();
      await outbox.append([event]);
      const [again] = await outbox.append([{ ...event, data: { changed: true } }]);
      expect(again!.duplicate).toBe(true);
      expect(again!.event.data).toEqual(event.data);
      expect(await outbox.list({}, page)).toHaveLength(1);
      expect(changes).toBe(1);
    });

    it('writes all events of a batch or none', async () => {
      await store.refuseTopic('poison');
      await expect(outbox.append([makeEvent(), makeEvent({ topic: 'poison' })])).rejects.toThrow(/refused by a constraint/);
      expect(await outbox.list({}, page)).toHaveLength(0);
      expect(changes).toBe(0);
    });

    it('commits concurrent appends as one group, each all-or-nothing with its own outcome', async () => {
      const known = makeEvent();
      await outbox.append([known]);
      changes = 0;
      await store.refuseTopic('poison');
      const fresh = [makeEvent(), makeEvent({ key: 'k' })];
      const batch = [makeEvent(), makeEvent()];
      const outcomes = await Promise.allSettled([
        outbox.append([fresh[0]!]),
        outbox.append([{ ...known, data: { again: true } }]),
        outbox.append([makeEvent(), makeEvent({ topic: 'poison' })]),
        outbox.append(batch),
        outbox.append([fresh[1]!]),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      const value = (i: number) => (outcomes[i] as PromiseFulfilledResult<Awaited<ReturnType<OutboxRepository['append']>>>).value;
      expect(value(1)[0]).toMatchObject({ duplicate: true, event: { id: known.id, data: known.data } });
      expect(value(0)[0]!.duplicate).toBe(false);
      expect(value(3).map((r) => r.duplicate)).toEqual([false, false]);
      // One commit for the whole group: the relay is woken once.
      expect(changes).toBe(1);
      const stored = (await outbox.list({}, page)).map((r) => r.eventId);
      expect(stored).toEqual([known.id, fresh[0]!.id, batch[0]!.id, batch[1]!.id, fresh[1]!.id]);
    });

    it('fails every append of a group with STORE_UNAVAILABLE and writes nothing when the store cannot write', async () => {
      const unblock = await store.blockWrites();
      try {
        const outcomes = await Promise.allSettled([outbox.append([makeEvent()]), outbox.append([makeEvent(), makeEvent()]), outbox.append([makeEvent()])]);
        for (const outcome of outcomes) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
        }
      } finally {
        await unblock();
      }
      expect(await outbox.list({}, page)).toHaveLength(0);
      expect(changes).toBe(0);
      // The store recovers by itself.
      await outbox.append([makeEvent()]);
      expect(await outbox.list({}, page)).toHaveLength(1);
    });

    it('hands new rows, claimed, to the local relay: within its capacity and never behind a pending row of their key', async () => {
      const taken: ClaimedRow[] = [];
      let capacity = 3;
      outbox.handOffTo({ owner: 'local', leaseMs: 60_000, capacity: () => capacity, take: (rows) => void taken.push(...rows) });
      await store.refuseTopic('poison');
      const [a1, b1, a2, c1, d1] = [makeEvent({ key: 'a' }), makeEvent({ key: 'b' }), makeEvent({ key: 'a' }), makeEvent(), makeEvent({ key: 'd' })];
      const outcomes = await Promise.allSettled([
        outbox.append([a1, b1]),
        outbox.append([makeEvent({ key: 'x' }), makeEvent({ topic: 'poison' })]),
        outbox.append([a2]),
        outbox.append([c1, d1]),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      // a2 waits behind a1; the failed mutation's row was never written; d1 is over the capacity.
      expect(taken.map((r) => r.eventId)).toEqual([a1.id, b1.id, c1.id]);
      expect(taken[0]!.event).toBe(a1);
      expect(taken.map((r) => r.attempts)).toEqual([0, 0, 0]);
      for (const row of taken) expect(await outbox.get(row.id)).toMatchObject({ claimedBy: 'local', status: 'PENDING' });
      // The claim path wakes for what was not handed, and does not hand out what the relay holds.
      expect(changes).toBe(1);
      expect((await outbox.claim({ owner: 'other', limit: 10, leaseMs: 1000 })).map((r) => r.eventId)).toEqual([d1.id]);
      capacity = 0;
      await outbox.append([makeEvent()]);
      expect(taken).toHaveLength(3);
      outbox.handOffTo(undefined);
    });

    it('claims due rows oldest first and never hands one row to two relays', async () => {
      await outbox.append([makeEvent(), makeEvent(), makeEvent()]);
      const a = await outbox.claim({ owner: 'a', limit: 2, leaseMs: 10_000 });
      const b = await outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 });
      expect(ids(a)).toEqual([1, 2]);
      expect(ids(b)).toEqual([3]);
      expect(await outbox.claim({ owner: 'c', limit: 10, leaseMs: 10_000 })).toEqual([]);
    });

    it('holds back later rows of a key while an earlier one is claimed or backing off', async () => {
      await outbox.append([makeEvent({ key: 'k' }), makeEvent({ key: 'k' }), makeEvent({ key: 'other' })]);
      const first = await outbox.claim({ owner: 'a', limit: 1, leaseMs: 10_000 });
      expect(ids(first)).toEqual([1]);
      // Row 2 shares key k with the claimed row 1; only the other key may go.
      expect(ids(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 }))).toEqual([3]);
      await outbox.settle('b', [{ id: 3, ok: true }]);
      const now = Date.now();
      await outbox.settle('a', [{ id: 1, ok: false, error: 'boom', retryAt: now + 60_000 }], now);
      // Row 1 now waits out a backoff, so row 2 must still wait behind it.
      expect(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000 })).toEqual([]);
      expect(ids(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 10_000, now: now + 61_000 }))).toEqual([1, 2]);
    });

    it('lets another relay take rows whose lease ran out', async () => {
      await outbox.append([makeEvent()]);
      const now = Date.now();
      expect(await outbox.claim({ owner: 'a', limit: 10, leaseMs: 1000, now })).toHaveLength(1);
      expect(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 1000, now: now + 500 })).toHaveLength(0);
      expect(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 1000, now: now + 1500 })).toHaveLength(1);
    });

    it('renews a claim only for its owner, and lets the owner release rows without counting an attempt', async () => {
      await outbox.append([makeEvent(), makeEvent()]);
      const now = Date.now();
      await outbox.claim({ owner: 'a', limit: 10, leaseMs: 1000, now });
      await outbox.renew('a', [1], 60_000, now);
      await outbox.renew('b', [2], 60_000, now);
      expect(ids(await outbox.claim({ owner: 'b', limit: 10, leaseMs: 1000, now: now + 1500 }))).toEqual([2]);
      await outbox.release('a', [1]);
      expect(await outbox.get(1)).toMatchObject({ claimedBy: null, attempts: 0, status: 'PENDING' });
    });

    it('settles published, retryable and permanent outcomes', async () => {
      await outbox.append([makeEvent(), makeEvent(), makeEvent()]);
      await outbox.claim({ owner: 'r', limit: 10, leaseMs: 10_000 });
      const now = Date.now();
      await outbox.settle(
        'r',
        [
          { id: 1, ok: true },
          { id: 2, ok: false, error: 'broker down', retryAt: now + 1000 },
          { id: 3, ok: false, error: 'message too large', retryAt: null },
        ],
        now,
      );
      const [one, two, three] = [(await outbox.get(1))!, (await outbox.get(2))!, (await outbox.get(3))!];
      expect(one.status).toBe('PUBLISHED');
      expect(one.publishedAt?.getTime()).toBe(now);
      expect(two).toMatchObject({ status: 'PENDING', attempts: 1, lastError: 'broker down', claimedBy: null });
      expect(two.nextAttemptAt.getTime()).toBe(now + 1000);
      expect(three).toMatchObject({ status: 'FAILED', attempts: 1, lastError: 'message too large' });
      expect(await outbox.count('PENDING')).toBe(1);
      changes = 0;
      expect((await outbox.retry(3))?.status).toBe('PENDING');
      expect(changes).toBe(1);
      expect(await outbox.retry(1)).toBeUndefined();
    });

    it('leaves a row another relay took over to that relay', async () => {
      await outbox.append([makeEvent()]);
      const now = Date.now();
      await outbox.claim({ owner: 'a', limit: 1, leaseMs: 1000, now });
      await outbox.claim({ owner: 'b', limit: 1, leaseMs: 60_000, now: now + 2000 });
      await outbox.settle('a', [{ id: 1, ok: false, error: 'late', retryAt: now + 10_000 }], now + 3000);
      expect(await outbox.get(1)).toMatchObject({ status: 'PENDING', claimedBy: 'b', attempts: 0 });
    });

    it('lists by status with cursors in both directions', async () => {
      await outbox.append(Array.from({ length: 5 }, () => makeEvent()));
      await outbox.claim({ owner: 'r', limit: 2, leaseMs: 1000 });
      await outbox.settle('r', [
        { id: 1, ok: true },
        { id: 2, ok: true },
      ]);
      expect(ids(await outbox.list({ status: 'PENDING' }, page))).toEqual([3, 4, 5]);
      const first = await outbox.list({}, { limit: 2, inverted: false });
      const cursor = Buffer.from(`outbox:${first[1]!.id}`).toString('base64url');
      expect(ids(await outbox.list({}, { limit: 2, inverted: false, after: cursor }))).toEqual([3, 4]);
      expect(ids(await outbox.list({}, { limit: 2, inverted: true }))).toEqual([5, 4]);
      await expect(outbox.list({}, { limit: 2, inverted: false, after: 'garbage' })).rejects.toThrow(/invalid cursor/);
      expect((await outbox.getByEventId(first[0]!.eventId))?.id).toBe(1);
    });

    it('knows when a claim will next find a row: key heads and keyless rows, once due and unclaimed', async () => {
      expect(await outbox.nextDueAt()).toBeNull();
      await outbox.append([makeEvent({ key: 'a' }), makeEvent({ key: 'a' }), makeEvent()]);
      const now = Date.now();
      const [head, , keyless] = await outbox.claim({ owner: 'r', limit: 10, leaseMs: 60_000, now });
      expect(head).toBeDefined();
      // Head of "a" backs off for 5 s; the keyless row is claimed for a minute; the second "a"
      // row is due now but waits behind its head.
      await outbox.settle('r', [{ id: head!.id, ok: false, error: 'x', retryAt: now + 5_000 }], now);
      expect(keyless).toBeDefined();
      expect(await outbox.nextDueAt()).toBe(now + 5_000);
      await outbox.release('r', [keyless!.id]);
      expect(await outbox.nextDueAt()).toBeLessThanOrEqual(now);
    });

    it('prunes only PUBLISHED rows older than the retention', async () => {
      await outbox.append([makeEvent(), makeEvent(), makeEvent()]);
      await outbox.claim({ owner: 'r', limit: 10, leaseMs: 1000 });
      const now = Date.now();
      await outbox.settle(
        'r',
        [
          { id: 1, ok: true },
          { id: 2, ok: false, error: 'x', retryAt: null },
          { id: 3, ok: false, error: 'y', retryAt: now },
        ],
        now - 10_000,
      );
      expect(await outbox.prunePublished(now - 5_000, 100)).toBe(1);
      expect((await outbox.list({}, page)).map((r) => r.status)).toEqual(['FAILED', 'PENDING']);
    });

    it('sums up rows per status and when the oldest pending one was written, and tells claims when their rows were written', async () => {
      expect(await outbox.summary()).toEqual({ counts: { PENDING: 0, PUBLISHED: 0, FAILED: 0 }, oldestPendingAt: null });
      const before = Date.now();
      await outbox.append([makeEvent(), makeEvent(), makeEvent(), makeEvent()]);
      const claimed = await outbox.claim({ owner: 'r', limit: 2, leaseMs: 1000 });
      expect(claimed.map((r) => r.createdAt.getTime() >= before - 1 && r.createdAt.getTime() <= Date.now())).toEqual([true, true]);
      await outbox.settle('r', [
        { id: claimed[0]!.id, ok: true },
        { id: claimed[1]!.id, ok: false, error: 'refused', retryAt: null },
      ]);
      const { counts, oldestPendingAt } = await outbox.summary();
      expect(counts).toEqual({ PENDING: 2, PUBLISHED: 1, FAILED: 1 });
      expect(oldestPendingAt).toEqual((await outbox.get(3))!.createdAt);
    });
  });
}
