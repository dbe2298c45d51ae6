import type { Admin, Batch, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from '../../util/logger.js';
import type { ConsumerBinding, ConsumerHandle, DeliverySink } from '../broker.js';
import { Capacity } from './capacity.js';
import type { ConnectionMonitor } from './connection-monitor.js';
import { DelayedDeliveries } from './delayed-deliveries.js';
import { DeliveryRunner } from './delivery-runner.js';
import { GroupMember, type Assignment } from './group-member.js';
import { consumerGroupLag, type PartitionLag } from './lag.js';
import { describeOrigin, notBeforeOf, type RecordOrigin } from './messages.js';
import { OffsetCommitter } from './offset-committer.js';
import { OffsetTracker, type OffsetToCommit, type PartitionProgress } from './offset-tracker.js';
import { consumerTopicSpecs, retryTopicOf, type ResolvedKafkaOptions } from './options.js';
import { positionNewGroup, startOffsets } from './positioner.js';
import type { KafkaPublisher } from './publisher.js';
import { retryUntilDone, within } from '../../util/retrying.js';
import type { TopicManager } from './topic-manager.js';

export interface DurableConsumerDeps {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly topics: TopicManager;
  readonly publisher: KafkaPublisher;
  readonly monitor: ConnectionMonitor;
  readonly options: ResolvedKafkaOptions;
  readonly logger: Logger;
}

/**
 * Partitions (of the topic and the retry topic together) whose records a member hands over at
 * once; more than a member is usually assigned, so that none waits for another's batch.
 */
const PARTITIONS_AT_ONCE = 16;

/**
 * One attachment of a durable consumer: a member of the consumer group named after the consumer,
 * reading the consumer's topic and its own `<consumer>.retry` topic. Records are handed to the
 * sink in offset order per partition, at most the binding's window unsettled at once; each
 * offset is committed once it and everything before it on its partition is settled (see
 * `OffsetTracker`).
 */
export class KafkaDurableConsumer implements ConsumerHandle {
  private readonly name: string;
  private readonly retryTopic: string;
  private readonly capacity: Capacity;
  private readonly progress = new OffsetTracker();
  private readonly delayed = new DelayedDeliveries();
  private readonly closing = new AbortController();
  private readonly runner: DeliveryRunner;
  private readonly logger: Logger;
  private member: GroupMember | undefined;
  private retriesPaused = false;
  private readonly committer: OffsetCommitter;
  private closed: Promise<void> | undefined;
  /** When `consume()` was called: where a brand-new group starts (see `startOffsets`). */
  private readonly calledAt = Date.now();

  constructor(
    private readonly binding: ConsumerBinding,
    private readonly sink: DeliverySink,
    private readonly deps: DurableConsumerDeps,
  ) {
    this.name = binding.name;
    this.retryTopic = retryTopicOf(binding.name);
    this.capacity = new Capacity(Math.max(1, binding.window));
    this.logger = deps.logger.child({ consumer: binding.name });
    this.runner = new DeliveryRunner(this.name, binding.topic, deps.publisher, this.logger, this.closing.signal);
    this.committer = new OffsetCommitter(this.progress, (offsets) => this.commit(offsets), this.logger, this.closing.signal);
  }

  /**
   * Creates the topics, commits a brand-new group's start (so nothing published after the call
   * is missed), then joins the group. Resolves once this member has its assignment; after
   * `readyTimeoutMs` (Kafka down) it resolves anyway and keeps trying.
   */
  async start(): Promise<void> {
    const ready = await within(this.setUp(), this.deps.options.readyTimeoutMs);
    if (!ready && !this.closing.signal.aborted) {
      this.logger.warn(
        { topic: this.binding.topic, lastError: this.deps.monitor.status().lastError },
        'kafka consumer not joined yet; joining in the background',
      );
    }
  }

  async lag(): Promise<number> {
    const partitions = await this.lagByPartition();
    return partitions.reduce((sum, p) => sum + p.lag, 0);
  }

  /** Lag of this consumer's group on every partition of its topic and of its retry topic. */
  lagByPartition(): Promise<PartitionLag[]> {
    return consumerGroupLag(this.deps.admin, this.name, [this.binding.topic, this.retryTopic]);
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutDown());
  }

  private async setUp(): Promise<void> {
    const { options, topics, admin } = this.deps;
    const startAt = await retryUntilDone(
      async () => {
        await topics.ensure(consumerTopicSpecs(options, this.name, this.binding.topic));
        return startOffsets(admin, this.binding.topic, this.calledAt);
      },
      {
        signal: this.closing.signal,
        onError: (error, attempt, retryInMs) =>
          this.logger.warn({ err: error, topic: this.binding.topic, attempt, retryInMs }, 'could not set up kafka consumer; retrying'),
      },
    );
    if (!startAt || this.closing.signal.aborted) return;
    const target = { groupId: this.name, topic: this.binding.topic, retryTopic: this.retryTopic, startAt };
    await positionNewGroup(admin, target, this.closing.signal, this.logger);
    if (this.closing.signal.aborted) return;
    const member = new GroupMember(
      this.deps.kafka,
      {
        groupId: this.name,
        // The main topic's start was committed before joining; "earliest" applies to partitions
        // with no commit, added to the topic after that (all their records came later). The
        // retry topic holds only this consumer's messages.
        topics: [
          { topic: this.binding.topic, fromBeginning: true },
          { topic: this.retryTopic, fromBeginning: true },
        ],
        eachBatch: (payload) => this.eachBatch(payload),
        // Records of every assigned partition compete for the window. One partition at a time
        // filled it with the keys of that partition alone (about a third of them on three
        // partitions), which per-key order then ran a few at once, whatever the prefetch.
        partitionsAtOnce: PARTITIONS_AT_ONCE,
        onJoin: (assignment) => this.onJoin(assignment),
      },
      options,
      this.deps.monitor,
      this.logger,
    );
    this.member = member;
    member.start();
    await member.ready;
  }

  private onJoin(assignment: Assignment): void {
    const lost = this.progress.retain(assignment);
    this.delayed.dropFor(lost);
    // Held retries of lost partitions were dropped: whatever paused the retry topic is gone, and
    // kafkajs keeps a pause across a rebalance, so it is lifted here or never.
    if (this.retriesPaused) this.resumeRetries();
    this.logger.info({ assignment }, 'kafka consumer joined its group');
    // Commits made between the rebalance and the join may have been dropped (see `retain`).
    this.committer.schedule();
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, pause, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const fetchedOffset = Number((batch as Batch & { fetchedOffset?: string }).fetchedOffset ?? batch.firstOffset());
    const progress = this.progress.forBatch(batch.topic, batch.partition, fetchedOffset);
    const fromRetryTopic = batch.topic === this.retryTopic;
    for (const message of batch.messages) {
      if (this.closing.signal.aborted || !isRunning() || isStale()) return;
      const offset = Number(message.offset);
      if (progress.taken(offset)) {
        resolveOffset(message.offset);
        continue;
      }
      const origin: RecordOrigin = { topic: batch.topic, partition: batch.partition, offset: message.offset };
      const waitMs = fromRetryTopic ? notBeforeOf(message) - Date.now() : 0;
      if (waitMs > 0) {
        if (this.delayed.size >= this.deps.options.maxDelayedRetries) {
          // Enough held in memory: stop fetching retries until some are due (kafkajs refetches
          // this message from here after the resume).
          this.retriesPaused = true;
          pause();
          return;
        }
        progress.take(offset);
        resolveOffset(message.offset);
        this.delayed.hold(progress, waitMs, () => void this.deliverHeld(progress, origin, message));
        continue;
      }
      if (!(await this.waitForSlot(heartbeat))) return;
      progress.take(offset);
      resolveOffset(message.offset);
      this.dispatch(progress, origin, message);
    }
  }

  /** Waits for a free slot, heartbeating meanwhile so a saturated member keeps its partitions. */
  private async waitForSlot(heartbeat: () => Promise<void>): Promise<boolean> {
    for (;;) {
      if (await this.capacity.acquire(this.deps.options.heartbeatIntervalMs)) return true;
      if (this.closing.signal.aborted) return false;
      // Throws when the group rebalances: kafkajs then rejoins and refetches what was not taken.
      await heartbeat();
    }
  }

  private async deliverHeld(progress: PartitionProgress, origin: RecordOrigin, message: KafkaMessage): Promise<void> {
    this.resumeRetriesIfRoom();
    if (!(await this.capacity.acquire())) return;
    if (!this.progress.owns(progress)) {
      this.capacity.release();
      return;
    }
    this.dispatch(progress, origin, message);
  }

  /** Hands one record to the sink in a window slot it already holds; its settlement commits what became committable. */
  private dispatch(progress: PartitionProgress, origin: RecordOrigin, message: KafkaMessage): void {
    const delivery = this.runner.decode(origin, message);
    this.sink.push({
      ...delivery,
      ids: { consumer: this.name, origin: describeOrigin(origin) },
      settle: async (settlement) => {
        try {
          if (!(await this.runner.settle(message, origin, delivery, settlement))) return;
          progress.settle(Number(origin.offset));
          if (this.progress.owns(progress)) this.committer.schedule();
        } catch (error) {
          this.logger.error({ err: error, origin: describeOrigin(origin) }, 'kafka delivery failed unexpectedly');
        } finally {
          this.capacity.release();
        }
      },
    });
  }

  private async commit(offsets: readonly OffsetToCommit[]): Promise<void> {
    if (!this.member) throw new Error('not joined yet');
    await this.member.consumer.commitOffsets([...offsets]);
  }

  private resumeRetriesIfRoom(): void {
    if (this.retriesPaused && this.delayed.size < this.deps.options.maxDelayedRetries / 2) this.resumeRetries();
  }

  private resumeRetries(): void {
    this.retriesPaused = false;
    try {
      this.member?.consumer.resume([{ topic: this.retryTopic }]);
    } catch (error) {
      // Between a crash and its restart there is nothing to resume; the restart starts unpaused.
      this.logger.debug({ err: error }, 'could not resume the retry topic');
    }
  }

  private async shutDown(): Promise<void> {
    this.closing.abort();
    this.capacity.close();
    this.delayed.clear();
    try {
      // Nothing more is taken; stop fetching while the deliveries in flight finish.
      this.member?.consumer.pause([{ topic: this.binding.topic }, { topic: this.retryTopic }]);
    } catch {
      /* not running (crashed or never started): nothing is fetched anyway */
    }
    await this.sink.idle();
    await this.committer.flush();
    await this.member?.stop();
    this.logger.info({ unsettled: this.progress.unsettled }, 'kafka consumer closed');
  }
}
