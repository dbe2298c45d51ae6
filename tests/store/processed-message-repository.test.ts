import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createProcessedMessageRepository,
  processedMessageCursor,
  type ProcessedMessageRepository,
} from '../../src/store/processed-message-repository.js';
import { openTempStore } from '../helpers/store.js';

describe('processed-message repository', () => {
  let store: ReturnType<typeof openTempStore>;
  let processed: ProcessedMessageRepository;
  beforeEach(() => {
    store = openTempStore();
    processed = createProcessedMessageRepository(store);
  });
  afterEach(() => store.cleanup());

  it('records an event once per consumer', () => {
    expect(processed.record('a', 'e1')).toBe(true);
    expect(processed.record('a', 'e1')).toBe(false);
    expect(processed.record('b', 'e1')).toBe(true);
    expect(processed.has('a', 'e1')).toBe(true);
    expect(processed.has('a', 'e2')).toBe(false);
    expect(Object.fromEntries(processed.countByConsumer())).toEqual({ a: 1, b: 1 });
  });

  it('pages newest first, including rows with the same timestamp', () => {
    for (const [id, at] of [['e1', 1000], ['e2', 2000], ['e3', 2000], ['e4', 3000]] as const) processed.record('c', id, at);
    const first = processed.list('c', { limit: 2, inverted: false });
    expect(first.map((r) => r.eventId)).toEqual(['e4', 'e3']);
    const rest = processed.list('c', { limit: 10, inverted: false, after: processedMessageCursor(first[1]!) });
    expect(rest.map((r) => r.eventId)).toEqual(['e2', 'e1']);
    const back = processed.list('c', { limit: 10, inverted: true, before: processedMessageCursor(rest[0]!) });
    expect(back.map((r) => r.eventId)).toEqual(['e3', 'e4']);
  });

  it('refuses a cursor it did not make', () => {
    const forged = Buffer.from('processed:abc').toString('base64url');
    expect(() => processed.list('c', { limit: 2, inverted: false, after: forged })).toThrow(/invalid cursor/);
  });

  it('prunes records older than the retention', () => {
    processed.record('c', 'old', 1000);
    processed.record('c', 'new', 5000);
    expect(processed.prune(2000)).toBe(1);
    expect(processed.has('c', 'old')).toBe(false);
    expect(processed.has('c', 'new')).toBe(true);
  });
});
