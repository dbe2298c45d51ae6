import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PRUNE_BATCH_SIZE, pruneInBatches } from '../../src/store/prune.js';
import { makeEvent } from '../helpers/events.js';
import type { StoreDialect, TestStore } from '../helpers/store.js';

export function definePruneSuite(dialect: StoreDialect): void {
  describe(`pruning in batches (${dialect.name})`, () => {
    let store: TestStore;

    beforeEach(async () => {
      store = await dialect.open();
    });
    afterEach(() => store.cleanup());

    it('clears a backlog larger than one batch, oldest published first, and leaves newer and unpublished rows', async () => {
      const { outbox } = store;
      const total = PRUNE_BATCH_SIZE * 2 + 500;
      await outbox.append(Array.from({ length: total + 2 }, () => makeEvent()));
      const claimed = await outbox.claim({ owner: 'r', limit: total + 2, leaseMs: 60_000 });
      const now = Date.now();
      // All but the last two published long ago; one recently, one not at all.
      await outbox.settle(
        'r',
        claimed.slice(0, total).map((row) => ({ id: row.id, ok: true })),
        now - 60_000,
      );
      await outbox.settle('r', [{ id: claimed[total]!.id, ok: true }], now);
      await outbox.release('r', [claimed[total + 1]!.id]);

      const batches: number[] = [];
      const pruned = await pruneInBatches(async (size) => {
        const deleted = await outbox.prunePublished(now - 10_000, size);
        batches.push(deleted);
        return deleted;
      });
      expect(pruned).toBe(total);
      expect(batches).toEqual([PRUNE_BATCH_SIZE, PRUNE_BATCH_SIZE, 500]);
      expect(await outbox.count('PUBLISHED')).toBe(1);
      expect(await outbox.count('PENDING')).toBe(1);
    });

    it('stops between batches once told to', async () => {
      const { processed } = store;
      const old = Date.now() - 60_000;
      await Promise.all(Array.from({ length: PRUNE_BATCH_SIZE * 2 }, (_, i) => processed.record('billing', `e-${i}`, old)));
      const stop = new AbortController();
      const pruned = await pruneInBatches(async (size) => {
        const deleted = await processed.prune(Date.now(), size);
        stop.abort();
        return deleted;
      }, stop.signal);
      expect(pruned).toBe(PRUNE_BATCH_SIZE);
      expect((await processed.countByConsumer()).get('billing')).toBe(PRUNE_BATCH_SIZE);
    });
  });
}
