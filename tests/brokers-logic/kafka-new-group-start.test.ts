import { describe, expect, it } from 'vitest';
import { nextStartStep, type GroupView } from '../../src/brokers/kafka/positioner.js';

/** Where a consumer started at some point must begin on each of the topic's three partitions. */
const START_AT = new Map([
  [0, '12'],
  [1, '0'],
  [2, '7'],
]);

const view = (committed: Record<number, number>, state: string, attached = false): GroupView => ({
  committed: new Map(Object.entries(committed).map(([partition, offset]) => [Number(partition), offset])),
  state,
  attached,
});

describe('Kafka: positioning a new consumer group before joining it', () => {
  it('commits the start of every partition of a group that does not exist yet', () => {
    expect(nextStartStep(view({ 0: -1, 1: -1, 2: -1 }, 'Dead'), START_AT)).toEqual({
      kind: 'set',
      partitions: [
        { partition: 0, offset: '12' },
        { partition: 1, offset: '0' },
        { partition: 2, offset: '7' },
      ],
    });
  });

  it('commits only the partitions still without a commit (another process set the others)', () => {
    expect(nextStartStep(view({ 0: 12, 1: -1, 2: 9 }, 'Empty'), START_AT)).toEqual({ kind: 'set', partitions: [{ partition: 1, offset: '0' }] });
  });

  it('joins once every partition has a commit, whoever is in the group', () => {
    for (const state of ['Empty', 'Stable', 'PreparingRebalance', 'CompletingRebalance']) {
      expect(nextStartStep(view({ 0: 12, 1: 0, 2: 7 }, state), START_AT)).toEqual({ kind: 'join' });
    }
  });

  it('counts offset 0 as a commit and leaves alone what running members committed', () => {
    expect(nextStartStep(view({ 0: 0, 1: 0, 2: 0 }, 'Empty'), START_AT)).toEqual({ kind: 'join' });
    expect(nextStartStep(view({ 0: 500, 1: 3, 2: 99 }, 'Empty'), START_AT)).toEqual({ kind: 'join' });
  });

  it('waits while others are in a group that has no commit yet: another process is setting its start', () => {
    expect(nextStartStep(view({ 0: -1, 1: -1, 2: -1 }, 'Stable'), START_AT)).toEqual({ kind: 'wait' });
    expect(nextStartStep(view({ 0: -1, 1: -1, 2: -1 }, 'PreparingRebalance'), START_AT)).toEqual({ kind: 'wait' });
    expect(nextStartStep(view({ 0: 12, 1: -1, 2: -1 }, 'CompletingRebalance'), START_AT)).toEqual({ kind: 'wait' });
  });

  it('joins a group where attachments of this consumer already run, even with partitions they never committed', () => {
    expect(nextStartStep(view({ 0: 40, 1: -1, 2: -1 }, 'Stable', true), START_AT)).toEqual({ kind: 'join' });
  });

  it('leaves partitions added after consume() was called to be read from their beginning', () => {
    // Partition 3 is not in START_AT: whatever it holds came after the consumer existed.
    expect(nextStartStep(view({ 0: 12, 1: 0, 2: 7, 3: -1 }, 'Empty'), START_AT)).toEqual({ kind: 'join' });
  });

  it('treats a partition missing from the committed offsets as never committed', () => {
    expect(nextStartStep(view({ 0: 12, 2: 7 }, 'Empty'), START_AT)).toEqual({ kind: 'set', partitions: [{ partition: 1, offset: '0' }] });
  });
});
