import { describe, expect, it } from 'vitest';
import { startAfter, startFromEnd, type PartitionBounds } from '../../src/brokers/kafka/fan-out-start.js';
import { CursorExpiredError, InvalidCursorError } from '../../src/errors.js';

const bounds: PartitionBounds[] = [
  { partition: 0, low: '0', high: '0' },
  { partition: 1, low: '4', high: '10' },
  { partition: 2, low: '0', high: '7' },
];

describe('where a Kafka fan-out subscription starts', () => {
  it('from now: at every high watermark, reporting the offset before it (-1 for an empty partition)', () => {
    const { next, start } = startFromEnd(bounds);
    expect([...next]).toEqual([
      [0, 0],
      [1, 10],
      [2, 7],
    ]);
    expect(start).toEqual({ '0': -1, '1': 9, '2': 6 });
  });

  it('after a point: just after it where named, at the low watermark elsewhere', () => {
    const { next, start } = startAfter(bounds, { '0': -1, '1': 3 });
    expect([...next]).toEqual([
      [0, 0],
      [1, 4],
      [2, 0],
    ]);
    expect(start).toEqual({ '0': -1, '1': 3, '2': -1 });
    // At the end of every partition: nothing to replay.
    expect([...startAfter(bounds, { '0': -1, '1': 9, '2': 6 }).next]).toEqual([
      [0, 0],
      [1, 10],
      [2, 7],
    ]);
  });

  it('refuses a point whose next record was deleted as expired', () => {
    expect(() => startAfter(bounds, { '1': 2 })).toThrow(CursorExpiredError);
  });

  it('refuses a point past the end, on a partition the topic lacks, or with a garbled offset as invalid', () => {
    expect(() => startAfter(bounds, { '2': 7 })).toThrow(InvalidCursorError);
    expect(() => startAfter(bounds, { '0': 0 })).toThrow(InvalidCursorError);
    expect(() => startAfter(bounds, { '3': 0 })).toThrow(InvalidCursorError);
    expect(() => startAfter(bounds, { '': 0 })).toThrow(InvalidCursorError);
    expect(() => startAfter(bounds, { '2': 1.5 })).toThrow(InvalidCursorError);
    expect(() => startAfter(bounds, { '2': -2 })).toThrow(InvalidCursorError);
  });
});
