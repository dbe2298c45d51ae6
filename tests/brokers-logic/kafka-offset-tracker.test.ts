import { describe, expect, it } from 'vitest';
import { OffsetCommitter } from '../../src/brokers/kafka/offset-committer.js';
import { OffsetTracker, PartitionProgress, type OffsetToCommit } from '../../src/brokers/kafka/offset-tracker.js';
import { silentLogger } from '../../src/util/logger.js';

const taking = (progress: PartitionProgress, ...offsets: number[]) => {
  for (const offset of offsets) progress.take(offset);
  return progress;
};

describe('Kafka PartitionProgress: what may be committed on one partition', () => {
  it('commits only the settled prefix when records settle out of order', () => {
    const progress = taking(new PartitionProgress('orders', 0, 10), 10, 11, 12, 13);
    expect(progress.commitPoint()).toBe(10);
    progress.settle(12);
    progress.settle(13);
    expect(progress.commitPoint()).toBe(10);
    progress.settle(11);
    expect(progress.commitPoint()).toBe(10);
    progress.settle(10);
    expect(progress.commitPoint()).toBe(14);
    expect(progress.unsettled).toBe(0);
  });

  it('holds the commit at a record kept for a later retry while everything after it settles', () => {
    const progress = taking(new PartitionProgress('orders', 0, 0), 0, 1, 2, 3, 4);
    for (const offset of [0, 2, 3, 4]) progress.settle(offset);
    expect(progress.commitPoint()).toBe(1);
    progress.take(5);
    progress.settle(5);
    expect(progress.commitPoint()).toBe(1);
    progress.settle(1);
    expect(progress.commitPoint()).toBe(6);
  });

  it('commits past offsets that never reach the consumer (compaction, transaction markers)', () => {
    const progress = taking(new PartitionProgress('orders', 0, 100), 100, 103, 107);
    progress.settle(100);
    progress.settle(107);
    expect(progress.commitPoint()).toBe(103);
    progress.settle(103);
    expect(progress.commitPoint()).toBe(108);
  });

  it('starts where the first batch was fetched, before anything is taken', () => {
    const progress = new PartitionProgress('orders', 2, 42);
    expect(progress.commitPoint()).toBe(42);
    expect(progress.taken(41)).toBe(true);
    expect(progress.taken(42)).toBe(false);
  });

  it('knows records it already took when kafkajs fetches them again, settled or not', () => {
    const progress = taking(new PartitionProgress('orders', 0, 0), 0, 1, 2);
    progress.settle(1);
    expect([0, 1, 2, 3].map((offset) => progress.taken(offset))).toEqual([true, true, true, false]);
  });

  it('settling an offset twice, or one never taken, changes nothing', () => {
    const progress = taking(new PartitionProgress('orders', 0, 0), 0, 1);
    progress.settle(1);
    progress.settle(1);
    progress.settle(7);
    expect(progress.commitPoint()).toBe(0);
    expect(progress.unsettled).toBe(1);
  });

  it('after a rejoin behind what it took, keeps its records and their place in the commit', () => {
    const progress = taking(new PartitionProgress('orders', 0, 0), 0, 1, 2);
    progress.settle(0);
    progress.rebase(1);
    expect(progress.commitPoint()).toBe(1);
    expect(progress.taken(2)).toBe(true);
  });

  it('after a rejoin past what it took (another member moved the group on), gives up what it still held below that', () => {
    const progress = taking(new PartitionProgress('orders', 0, 0), 0, 1, 2);
    progress.settle(0);
    progress.rebase(10);
    expect(progress.unsettled).toBe(0);
    expect(progress.commitPoint()).toBe(10);
    expect(progress.taken(9)).toBe(true);
    expect(progress.taken(10)).toBe(false);
    // A record below the new point settling late does not pull the commit back.
    progress.settle(1);
    expect(progress.commitPoint()).toBe(10);
  });
});

describe('Kafka OffsetTracker: the partitions of one group member', () => {
  it('makes one progress per partition, created where its first batch starts', () => {
    const tracker = new OffsetTracker();
    const first = tracker.forBatch('orders', 0, 5);
    expect(tracker.forBatch('orders', 0, 9)).toBe(first);
    expect(first.commitPoint()).toBe(5);
    expect(tracker.forBatch('orders', 1, 0)).not.toBe(first);
    expect(tracker.forBatch('orders.retry', 0, 0)).not.toBe(first);
  });

  it('offers a partition for commit only when its commit point moved', () => {
    const tracker = new OffsetTracker();
    taking(tracker.forBatch('orders', 0, 0), 0, 1);
    tracker.forBatch('orders', 1, 3);
    const offsets = tracker.uncommitted();
    expect(offsets).toEqual([
      { topic: 'orders', partition: 0, offset: '0' },
      { topic: 'orders', partition: 1, offset: '3' },
    ]);
    tracker.markCommitted(offsets);
    expect(tracker.uncommitted()).toEqual([]);
    tracker.forBatch('orders', 0, 0).settle(0);
    expect(tracker.uncommitted()).toEqual([{ topic: 'orders', partition: 0, offset: '1' }]);
  });

  it('on a rebalance forgets partitions that went elsewhere and hands them back, so their held retries can be dropped', () => {
    const tracker = new OffsetTracker();
    const kept = taking(tracker.forBatch('orders', 0, 0), 0);
    const lost = taking(tracker.forBatch('orders', 1, 0), 0, 1);
    const lostRetry = tracker.forBatch('orders.retry', 1, 0);
    expect(tracker.retain({ orders: [0], 'orders.retry': [0] })).toEqual([lost, lostRetry]);
    expect(tracker.owns(kept)).toBe(true);
    expect(tracker.owns(lost)).toBe(false);
    expect(tracker.unsettled).toBe(1);
    // A late settlement of a lost record is not committed by this member.
    lost.settle(0);
    expect(tracker.uncommitted()).toEqual([{ topic: 'orders', partition: 0, offset: '0' }]);
  });

  it('takes a partition that comes back after a rebalance afresh, from where the group committed', () => {
    const tracker = new OffsetTracker();
    const before = taking(tracker.forBatch('orders', 1, 0), 0, 1);
    before.settle(0);
    tracker.retain({ orders: [0] });
    tracker.retain({ orders: [0, 1] });
    // Offset 1 was never settled, so the group redelivers it: it must not count as taken.
    const after = tracker.forBatch('orders', 1, 1);
    expect(after).not.toBe(before);
    expect(after.taken(1)).toBe(false);
    expect(after.unsettled).toBe(0);
    expect(after.commitPoint()).toBe(1);
  });

  it('after a rejoin, commits again what it committed before (kafkajs may have dropped a commit made around the rebalance)', () => {
    const tracker = new OffsetTracker();
    taking(tracker.forBatch('orders', 0, 0), 0).settle(0);
    tracker.markCommitted(tracker.uncommitted());
    expect(tracker.uncommitted()).toEqual([]);
    tracker.retain({ orders: [0] });
    expect(tracker.uncommitted()).toEqual([{ topic: 'orders', partition: 0, offset: '1' }]);
  });

  it('aligns a kept partition with the first batch after a rejoin only, not with later batches', () => {
    const tracker = new OffsetTracker();
    const progress = taking(tracker.forBatch('orders', 0, 0), 0, 1, 2);
    tracker.retain({ orders: [0] });
    // The group moved on while this member was away: its first batch starts at 20.
    expect(tracker.forBatch('orders', 0, 20)).toBe(progress);
    expect(progress.commitPoint()).toBe(20);
    progress.take(20);
    // A later batch starting further on (past control records) says nothing about the group.
    tracker.forBatch('orders', 0, 25);
    expect(progress.commitPoint()).toBe(20);
    expect(progress.taken(20)).toBe(true);
    expect(progress.taken(21)).toBe(false);
  });

  it('ignores commits reported for partitions it no longer owns', () => {
    const tracker = new OffsetTracker();
    tracker.forBatch('orders', 0, 4);
    tracker.retain({ orders: [] });
    tracker.markCommitted([{ topic: 'orders', partition: 0, offset: '4' }]);
    expect(tracker.uncommitted()).toEqual([]);
    expect(tracker.forBatch('orders', 0, 4).committed).toBeUndefined();
  });
});

describe('Kafka OffsetCommitter', () => {
  const committer = (tracker: OffsetTracker, commit: (offsets: OffsetToCommit[]) => Promise<void>, closing = new AbortController()) =>
    new OffsetCommitter(tracker, commit, silentLogger, closing.signal);

  it('folds settlements made while a commit is in flight into one next commit', async () => {
    const tracker = new OffsetTracker();
    const progress = taking(tracker.forBatch('orders', 0, 0), 0, 1, 2, 3);
    const commits: OffsetToCommit[][] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    const subject = committer(tracker, async (offsets) => {
      commits.push(offsets);
      if (commits.length === 1) await first;
    });
    progress.settle(0);
    subject.schedule();
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const offset of [1, 2, 3]) {
      progress.settle(offset);
      subject.schedule();
    }
    release();
    await subject.flush();
    expect(commits.map((offsets) => offsets.map((o) => o.offset))).toEqual([['1'], ['4']]);
  });

  it('retries a failed commit and commits what settled since', async () => {
    const tracker = new OffsetTracker();
    const progress = taking(tracker.forBatch('orders', 0, 0), 0, 1);
    const attempts: string[] = [];
    const subject = committer(tracker, async (offsets) => {
      attempts.push(offsets[0]!.offset);
      if (attempts.length === 1) throw new Error('REBALANCE_IN_PROGRESS');
    });
    progress.settle(0);
    subject.schedule();
    await new Promise((resolve) => setTimeout(resolve, 20));
    progress.settle(1);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(attempts).toEqual(['1', '2']);
    expect(tracker.uncommitted()).toEqual([]);
  });

  it('flushes what is committable when closing, without retrying in the background afterwards', async () => {
    const tracker = new OffsetTracker();
    const progress = taking(tracker.forBatch('orders', 0, 0), 0);
    const closing = new AbortController();
    let calls = 0;
    const subject = committer(
      tracker,
      async () => {
        calls++;
        throw new Error('coordinator gone');
      },
      closing,
    );
    closing.abort();
    progress.settle(0);
    await subject.flush();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(calls).toBe(1);
  });
});
