/** One partition's progress in this process: which offsets were taken and which are settled. */
export class PartitionProgress {
  /** Offsets taken (handed to the pipeline or held as a delayed retry) and not yet settled. */
  private readonly pending = new Set<number>();
  /** One past the highest offset taken. */
  private next: number;
  /** The last offset committed for this partition by this process, if any. */
  committed: number | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    start: number,
  ) {
    this.next = start;
  }

  /** Set by a group join this partition stayed with; the next batch shows where the group is. */
  rejoined = false;

  /**
   * Aligns with where kafkajs fetches from after a rejoin: the group's committed offset. Normally
   * that is at or below what this process took, and nothing changes. If the group is past it
   * (another member owned the partition meanwhile, e.g. while this one restarted after a crash),
   * what we still hold below that point is no longer ours to commit.
   */
  rebase(fetchedOffset: number): void {
    if (fetchedOffset <= this.next) return;
    for (const offset of this.pending) if (offset < fetchedOffset) this.pending.delete(offset);
    this.next = fetchedOffset;
  }

  /** True for an offset this process already took: kafkajs fetches it again after a rejoin. */
  taken(offset: number): boolean {
    return offset < this.next;
  }

  /** Takes an offset: it is unsettled until `settle`, and commits stop below it meanwhile. */
  take(offset: number): void {
    this.pending.add(offset);
    if (offset >= this.next) this.next = offset + 1;
  }

  settle(offset: number): void {
    this.pending.delete(offset);
  }

  /**
   * The offset to commit: the lowest unsettled one, or one past the last taken. Everything below
   * it is settled, so a crash redelivers from here and loses nothing.
   */
  commitPoint(): number {
    let lowest = this.next;
    for (const offset of this.pending) if (offset < lowest) lowest = offset;
    return lowest;
  }

  get unsettled(): number {
    return this.pending.size;
  }
}

export interface OffsetToCommit {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * Progress of every partition assigned to one consumer-group member. Offsets are committed only
 * up to the lowest unsettled offset of each partition, so messages may settle out of order (a
 * retry held for 30 s does not hold back the commit of anything but itself and what follows it).
 */
export class OffsetTracker {
  private readonly partitions = new Map<string, PartitionProgress>();

  /** The progress of a partition, created where its first fetched batch starts. */
  forBatch(topic: string, partition: number, fetchedOffset: number): PartitionProgress {
    const key = `${topic}/${partition}`;
    let progress = this.partitions.get(key);
    if (!progress) this.partitions.set(key, (progress = new PartitionProgress(topic, partition, fetchedOffset)));
    else if (progress.rejoined) progress.rebase(fetchedOffset);
    // Only the first batch after a join starts at the committed offset; later ones continue from
    // where kafkajs resolved (past a transaction's control records, too), which says nothing.
    progress.rejoined = false;
    return progress;
  }

  /** True while `progress` still belongs to a partition this member owns. */
  owns(progress: PartitionProgress): boolean {
    return this.partitions.get(`${progress.topic}/${progress.partition}`) === progress;
  }

  /**
   * After a group join: forgets partitions that went to other members (their settlements can no
   * longer be committed by us) and returns them; and forgets what was committed, because a commit
   * made between a rebalance and the join may have been skipped by kafkajs.
   */
  retain(assignment: Readonly<Record<string, readonly number[]>>): PartitionProgress[] {
    const lost: PartitionProgress[] = [];
    for (const [key, progress] of this.partitions) {
      progress.committed = undefined;
      progress.rejoined = true;
      if (!assignment[progress.topic]?.includes(progress.partition)) {
        this.partitions.delete(key);
        lost.push(progress);
      }
    }
    return lost;
  }

  /** Commit points that moved since the last commit. */
  uncommitted(): OffsetToCommit[] {
    const offsets: OffsetToCommit[] = [];
    for (const progress of this.partitions.values()) {
      const point = progress.commitPoint();
      if (point !== progress.committed) offsets.push({ topic: progress.topic, partition: progress.partition, offset: String(point) });
    }
    return offsets;
  }

  markCommitted(offsets: readonly OffsetToCommit[]): void {
    for (const { topic, partition, offset } of offsets) {
      const progress = this.partitions.get(`${topic}/${partition}`);
      if (progress) progress.committed = Number(offset);
    }
  }

  get unsettled(): number {
    let count = 0;
    for (const progress of this.partitions.values()) count += progress.unsettled;
    return count;
  }
}
