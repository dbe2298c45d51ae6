import type { Admin } from 'kafkajs';

/** How far one consumer group is behind on one partition. */
export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** The offset the next produced message gets. */
  readonly highWatermark: number;
  /** Where the group resumes; the earliest retained offset when it never committed here. */
  readonly committed: number;
  /** `highWatermark − committed`: messages not yet settled by the group. */
  readonly lag: number;
}

/**
 * Lag of `groupId` on every partition of `topics`: high watermark minus committed offset. A
 * partition the group never committed counts from its earliest retained offset, which is where
 * the group reads a topic it consumes from the beginning (its retry topic).
 */
export async function consumerGroupLag(admin: Admin, groupId: string, topics: readonly string[]): Promise<PartitionLag[]> {
  const [committed, ...watermarks] = await Promise.all([
    admin.fetchOffsets({ groupId, topics: [...topics] }),
    ...topics.map((topic) => admin.fetchTopicOffsets(topic)),
  ]);
  return topics.flatMap((topic, i) =>
    watermarks[i]!.map(({ partition, high, low }) => {
      const offset = Number(committed.find((c) => c.topic === topic)?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
      const from = offset >= 0 ? offset : Number(low);
      return { topic, partition, highWatermark: Number(high), committed: from, lag: Math.max(0, Number(high) - from) };
    }),
  );
}
