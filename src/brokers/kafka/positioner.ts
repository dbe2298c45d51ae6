import kafkajs, { type Admin, type GroupDescription, type SeekEntry } from 'kafkajs';
import { backoffDelay, sleep } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';

const { AssignerProtocol } = kafkajs;

const RETRY_BACKOFF = { initialMs: 200, maxMs: 5000, multiplier: 2, jitter: 0.2 };

/** Tolerated clock difference between this process and other producers of the topic. */
const CLOCK_SKEW_MS = 1000;

/**
 * Longest a new group waits for members that are not attachments of this consumer to leave
 * (another process's `setOffsets`, which stays about 5 s; one left by a crashed process, which the
 * coordinator drops after its 30 s session). After that it joins anyway: partitions still without
 * a commit are then read from their beginning.
 */
const OTHERS_WAIT_MS = 60_000;

/**
 * Per partition, the first offset a brand-new consumer created at `calledAt` must read: the
 * first record stamped (Kafka CreateTime) at most `CLOCK_SKEW_MS` before the call, or the end of
 * the partition read now, whichever is lower. The timestamp covers everything published between
 * the call and this lookup; the end covers records a producer stamped with an older time.
 */
export async function startOffsets(admin: Admin, topic: string, calledAt: number): Promise<Map<number, string>> {
  const [ends, byTime] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchTopicOffsetsByTimestamp(topic, calledAt - CLOCK_SKEW_MS)]);
  return new Map(
    ends.map(({ partition, high }) => {
      const stamped = byTime.find((p) => p.partition === partition)?.offset;
      return [partition, stamped !== undefined && Number(stamped) < Number(high) ? stamped : high];
    }),
  );
}

/** A consumer group as seen from outside, before a member of ours joins it. */
export interface GroupView {
  /** Committed offset per partition of the consumed topic; negative (or absent) where never committed. */
  readonly committed: ReadonlyMap<number, number>;
  /** Kafka's group state: `Dead` (no such group), `Empty`, `Stable`, `PreparingRebalance`, … */
  readonly state: string;
  /** True when an attachment of this consumer (a member reading its retry topic) runs in the group. */
  readonly attached: boolean;
}

/** What to do next before joining: join now, commit start offsets, or wait for others to leave. */
export type StartStep = { readonly kind: 'join' } | { readonly kind: 'set'; readonly partitions: readonly SeekEntry[] } | { readonly kind: 'wait' };

/**
 * The rule for positioning a group before joining it. Partitions that existed when `consume()`
 * was called (`startAt`) and were never committed get their start committed, which Kafka only
 * accepts from outside while no member is in the group. So:
 * - nothing left uncommitted: join, and kafkajs reads from the committed offsets;
 * - an attachment of this consumer already runs: join; the group's offsets are its members' to
 *   move now, and a partition they never committed is read from its beginning (it was added to
 *   the topic later, so all its records came after the consumer existed);
 * - nobody in the group: commit the start of every uncommitted partition;
 * - anything else (another process setting the start, a rebalance in progress, when Kafka does
 *   not list the members' subscriptions): wait and look again.
 */
export function nextStartStep(view: GroupView, startAt: ReadonlyMap<number, string>): StartStep {
  const fresh = [...startAt].filter(([partition]) => (view.committed.get(partition) ?? -1) < 0);
  if (fresh.length === 0 || view.attached) return { kind: 'join' };
  if (view.state === 'Empty' || view.state === 'Dead') return { kind: 'set', partitions: fresh.map(([partition, offset]) => ({ partition, offset })) };
  return { kind: 'wait' };
}

/** Whether a member's subscription (as `describeGroups` reports it for a stable group) names `topic`. */
function subscribes(member: GroupDescription['members'][number], topic: string): boolean {
  try {
    return AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics.includes(topic) ?? false;
  } catch {
    // Not the consumer protocol (another client sharing the group id): not ours.
    return false;
  }
}

export interface NewGroupTarget {
  readonly groupId: string;
  readonly topic: string;
  /** The consumer's retry topic: only its own attachments subscribe to it. */
  readonly retryTopic: string;
  /** From `startOffsets`, read when `consume()` was called. */
  readonly startAt: ReadonlyMap<number, string>;
}

/**
 * Where a brand-new durable consumer starts: with the first event published after `consume()`
 * was called (`startOffsets`). Not "earliest", which would hand a new consumer the topic's whole
 * retained history; and not kafkajs's "latest", which is read at the first fetch after the join,
 * so events published while the group was joining would be skipped.
 *
 * The start is committed through the admin API before any member of ours joins (see
 * `nextStartStep`), so a member only ever reads from committed offsets and nothing is moved
 * inside a join. The commit also makes the start durable: a process that stops before any event
 * arrives comes back to the same position instead of a later "latest". Two processes starting
 * the same new group at once may both find it empty; kafkajs's `setOffsets` then lets each commit
 * only the partitions its short-lived member was assigned, so each looks again until every
 * partition is committed, and neither joins before. Whichever start a partition keeps covers the
 * other process too when both called `consume()` within the 1 s both look back; a process that
 * comes later finds the group busy (it waits) or committed (it joins, at worst while the other's
 * short-lived member is still leaving, which costs one more rebalance).
 *
 * kafkajs's `setOffsets` joins the group with a paused member and waits out one fetch wait (5 s)
 * before it leaves: a new group's first start takes that much longer. Restarts and existing groups
 * skip it. Resolves once the member may join, or when `closing` aborts; never rejects (failures
 * are retried with backoff, as while Kafka is down).
 */
export async function positionNewGroup(admin: Admin, target: NewGroupTarget, closing: AbortSignal, logger: Logger): Promise<void> {
  const { groupId, topic, startAt } = target;
  let waitingSince: number | undefined;
  let attempt = 0;
  while (!closing.aborted) {
    try {
      const step = nextStartStep(await viewGroup(admin, target), startAt);
      if (step.kind === 'join') return;
      if (step.kind === 'set') {
        waitingSince = undefined;
        await admin.setOffsets({ groupId, topic, partitions: [...step.partitions] });
        logger.info({ startAt: step.partitions }, 'new kafka consumer group starts where consume() was called');
        // Look again: the commit may have covered only some partitions (see above).
        attempt = 0;
        continue;
      }
      waitingSince ??= Date.now();
      if (Date.now() - waitingSince > OTHERS_WAIT_MS) {
        logger.warn({ groupId, waitedMs: OTHERS_WAIT_MS }, 'kafka consumer group stayed busy with other members; joining without a committed start');
        return;
      }
    } catch (error) {
      logger.debug({ err: error, groupId, attempt }, 'could not position new kafka consumer group yet');
    }
    await sleep(backoffDelay(RETRY_BACKOFF, ++attempt), closing);
  }
}

async function viewGroup(admin: Admin, { groupId, topic, retryTopic }: NewGroupTarget): Promise<GroupView> {
  const [offsets, { groups }] = await Promise.all([admin.fetchOffsets({ groupId, topics: [topic] }), admin.describeGroups([groupId])]);
  const partitions = offsets.find((o) => o.topic === topic)?.partitions ?? [];
  const group = groups.find((g) => g.groupId === groupId);
  const state = group?.state ?? 'Dead';
  return {
    committed: new Map(partitions.map((p) => [p.partition, Number(p.offset)])),
    state,
    // Kafka lists the members' subscriptions only for a stable group.
    attached: state === 'Stable' && (group?.members ?? []).some((member) => subscribes(member, retryTopic)),
  };
}
