import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOutboxRepository, type OutboxRepository } from '../../src/store/outbox-repository.js';
import { createProcessedMessageRepository } from '../../src/store/processed-message-repository.js';
import { PRUNE_BATCH_SIZE, pruneInBatches } from '../../src/store/prune.js';
import { makeEvent } from '../helpers/events.js';
import { openTempStore } from '../helpers/store.js';

describe('pruning in batches', () => {
  let store: ReturnType<typeof openTempStore>;
  let outbox: OutboxRepository;

  beforeEach(() => {
    store = openTempStore();
    outbox = createOutboxRepository(store);
  });
  afterEach(() => store.cleanup());

  it('clears a backlog larger than one batch, oldest published first, and leaves newer and unpublished rows', async () => {
    const total = PRUNE_BATCH_SIZE * 2 + 500;
    outbox.append(Array.from({ length: total + 2 }, () => makeEvent()));
    const claimed = outbox.claim({ owner: 'r', limit: total + 2, leaseMs: 60_000 });
    const now = Date.now();
    // All but the last two published long ago; one recently, one not at all.
    outbox.settle('r', claimed.slice(0, total).map((row) => ({ id: row.id, ok: true })), now - 60_000);
    outbox.settle('r', [{ id: claimed[total]!.id, ok: true }], now);
    outbox.release('r', [claimed[total + 1]!.id]);

    const batches: number[] = [];
    const pruned = await pruneInBatches((size) => {
      const deleted = outbox.prunePublished(now - 10_000, size);
      batches.push(deleted);
      return deleted;
    });
    expect(pruned).toBe(total);
    expect(batches).toEqual([PRUNE_BATCH_SIZE, PRUNE_BATCH_SIZE, 500]);
    expect(outbox.count('PUBLISHED')).toBe(1);
    expect(outbox.count('PENDING')).toBe(1);
  });

  it('stops between batches once told to', async () => {
    const processed = createProcessedMessageRepository(store);
    const old = Date.now() - 60_000;
    store.transaction(() => {
      for (let i = 0; i < PRUNE_BATCH_SIZE * 2; i++) processed.record('billing', `e-${i}`, old);
    });
    const stop = new AbortController();
    const pruned = await pruneInBatches((size) => {
      const deleted = processed.prune(Date.now(), size);
      stop.abort();
      return deleted;
    }, stop.signal);
    expect(pruned).toBe(PRUNE_BATCH_SIZE);
    expect(processed.countByConsumer().get('billing')).toBe(PRUNE_BATCH_SIZE);
  });
});
