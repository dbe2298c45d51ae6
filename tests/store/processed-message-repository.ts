import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processedMessageCursor, type ProcessedMessageRepository } from '../../src/store/processed-message-repository.js';
import type { StoreDialect, TestStore } from '../helpers/store.js';

export function defineProcessedMessageRepositorySuite(dialect: StoreDialect): void {
  describe(`processed-message repository (${dialect.name})`, () => {
    let store: TestStore;
    let processed: ProcessedMessageRepository;
    beforeEach(async () => {
      store = await dialect.open();
      processed = store.processed;
    });
    afterEach(() => store.cleanup());

    it('records an event once per consumer', async () => {
      expect(await processed.record('a', 'e1')).toBe(true);
      expect(await processed.record('a', 'e1')).toBe(false);
      expect(await processed.record('b', 'e1')).toBe(true);
      expect(await processed.has('a', 'e1')).toBe(true);
      expect(await processed.has('a', 'e2')).toBe(false);
      expect(Object.fromEntries(await processed.countByConsumer())).toEqual({ a: 1, b: 1 });
    });

    it('answers concurrent records and look-ups each with its own result', async () => {
      const recorded = await Promise.all([processed.record('a', 'x'), processed.record('a', 'x'), processed.record('a', 'y'), processed.record('b', 'x')]);
      expect(recorded).toEqual([true, false, true, true]);
      const seen = await Promise.all(['x', 'y', 'z'].map((id) => processed.has('a', id)));
      expect(seen).toEqual([true, true, false]);
    });

    it('pages newest first, including rows with the same timestamp', async () => {
      for (const [id, at] of [
        ['e1', 1000],
        ['e2', 2000],
        ['e3', 2000],
        ['e4', 3000],
      ] as const)
        await processed.record('c', id, at);
      const first = await processed.list('c', { limit: 2, inverted: false });
      expect(first.map((r) => r.eventId)).toEqual(['e4', 'e3']);
      const rest = await processed.list('c', { limit: 10, inverted: false, after: processedMessageCursor(first[1]!) });
      expect(rest.map((r) => r.eventId)).toEqual(['e2', 'e1']);
      const back = await processed.list('c', { limit: 10, inverted: true, before: processedMessageCursor(rest[0]!) });
      expect(back.map((r) => r.eventId)).toEqual(['e3', 'e4']);
      expect((await processed.get('c', 'e2'))?.processedAt.getTime()).toBe(2000);
    });

    it('refuses a cursor it did not make', async () => {
      const forged = Buffer.from('processed:abc').toString('base64url');
      await expect(processed.list('c', { limit: 2, inverted: false, after: forged })).rejects.toThrow(/invalid cursor/);
    });

    it('prunes records older than the retention', async () => {
      await processed.record('c', 'old', 1000);
      await processed.record('c', 'new', 5000);
      expect(await processed.prune(2000, 100)).toBe(1);
      expect(await processed.has('c', 'old')).toBe(false);
      expect(await processed.has('c', 'new')).toBe(true);
    });
  });
}
