import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** Rows deleted per transaction when pruning. */
export const PRUNE_BATCH_SIZE = 5000;

/**
 * Deletes in batches until a batch comes back short, yielding to the event loop between them:
 * a large backlog of old rows (after a long downtime, or a retention just lowered) is cleared in
 * one go without blocking requests for its whole length. Stops early when `signal` aborts.
 * Returns how many rows were deleted.
 */
export async function pruneInBatches(deleteBatch: (batchSize: number) => Promise<number>, signal?: AbortSignal): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(PRUNE_BATCH_SIZE);
    total += deleted;
    if (deleted < PRUNE_BATCH_SIZE || signal?.aborted) return total;
    await yieldToEventLoop();
  }
}
