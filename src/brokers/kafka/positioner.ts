import type { Admin, Consumer, TopicPartitionOffset } from 'kafkajs';
import { backoffDelay, sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';

const RETRY_BACKOFF = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0.2 };

/** Tolerated clock difference between this process and other producers of the topic. */
const CLOCK_SKEW_MS = 1000;

/**
 * Per partition, the first offset a brand-new consumer created at `calledAt` must read: the
 * first record stamped (Kafka CreateTime) at most `CLOCK_SKEW_MS` before the call, or the end of
 * the partition read now, whichever is lower. The timestamp covers everything published between
 * the call and this lookup; the end covers records a producer stamped with an older time.
 */
export async function startOffsets(admin: Admin, topic: string, calledAt: number): Promise<Map<number, string>> {
  const [ends, byTime] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchTopicOffsetsByTimestamp(topic, calledAt - CLOCK_SKEW_MS),
  ]);
  return new Map(
    ends.map(({ partition, high }) => {
      const stamped = byTime.find((p) => p.partition === partition)?.offset;
      return [partition, stamped !== undefined && Number(stamped) < Number(high) ? stamped : high];
    }),
  );
}

/**
 * Where a brand-new durable consumer starts: with the first event published after `consume()`
 * was called (`startOffsets`). Not "earliest", which would hand a new consumer the topic's whole
 * retained history; and not kafkajs's "latest", which is read at the first fetch after the join,
 * so events published while the group was joining would be skipped.
 *
 * On every join, the member's partitions of the topic are paused before kafkajs fetches; those
 * the group never committed get the start offset committed (in the member's generation, so a
 * member that lost a rebalance race cannot overwrite another's position), then they resume.
 * The commit makes the start durable: a process that stops before any event arrives comes back
 * to the same position instead of a later "latest".
 */
export class NewGroupPositioner {
  private generation = 0;
  private announced = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly admin: Admin,
    private readonly groupId: string,
    private readonly topic: string,
    /** From `startOffsets`, read before joining. */
    private readonly startAt: ReadonlyMap<number, string>,
    private readonly logger: Logger,
  ) {}

  /**
   * Must be called synchronously from the group-join event. Resolves once the partitions are
   * positioned and fetching again, or when a later join or `closing` took over.
   */
  async position(partitions: readonly number[], closing: AbortSignal): Promise<void> {
    const generation = ++this.generation;
    if (partitions.length === 0) return;
    const target = [{ topic: this.topic, partitions: [...partitions] }];
    this.consumer.pause(target);
    const current = () => generation === this.generation && !closing.aborted;
    for (let attempt = 1; current(); attempt++) {
      try {
        const fresh = await this.neverCommitted(partitions);
        if (fresh.length === 0) break;
        const offsets = await this.startOffsets(fresh);
        for (const offset of offsets) this.consumer.seek(offset);
        await this.consumer.commitOffsets(offsets);
        if (!this.announced) this.logger.info({ startAt: offsets }, 'new kafka consumer group starts where consume() was called');
        this.announced = true;
        // Loop to check the commit landed: kafkajs drops commits silently while it is not running.
      } catch (error) {
        this.logger.debug({ err: error, groupId: this.groupId, attempt }, 'could not position kafka consumer group yet');
        await sleep(backoffDelay(RETRY_BACKOFF, attempt), closing);
      }
    }
    if (current()) this.consumer.resume(target);
  }

  private async neverCommitted(partitions: readonly number[]): Promise<number[]> {
    const [committed] = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
    return (committed?.partitions ?? [])
      .filter((p) => partitions.includes(p.partition) && Number(p.offset) < 0)
      .map((p) => p.partition);
  }

  private async startOffsets(partitions: readonly number[]): Promise<TopicPartitionOffset[]> {
    // A partition added after consume() was called starts at its current end.
    const missing = partitions.some((p) => !this.startAt.has(p));
    const now = missing ? new Map((await this.admin.fetchTopicOffsets(this.topic)).map((p) => [p.partition, p.high])) : undefined;
    return partitions.map((partition) => ({
      topic: this.topic,
      partition,
      offset: this.startAt.get(partition) ?? now?.get(partition) ?? '0',
    }));
  }
}
