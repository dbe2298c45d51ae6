import { randomUUID } from 'node:crypto';
import type { Admin, EachBatchPayload, Kafka } from 'kafkajs';
import { deliverToSubscriber } from '../delivery.js';
import { traceHeaders } from '../headers.js';
import { BrokerUnavailableError, CursorExpiredError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import type { FanOutOptions, LogPoint, LogPosition, Subscription } from '../broker.js';
import type { ConnectionMonitor } from './connection-monitor.js';
import { startAfter, startFromEnd } from './fan-out-start.js';
import { GroupMember, type Assignment } from './group-member.js';
import { topicSpec, type KafkaTopicSpec, type ResolvedKafkaOptions } from './options.js';
import { retryUntilDone, within } from '../../util/retrying.js';
import type { TopicManager } from './topic-manager.js';

export interface FanOutDeps {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly topics: TopicManager;
  readonly monitor: ConnectionMonitor;
  readonly options: ResolvedKafkaOptions;
  readonly logger: Logger;
}

/**
 * An ephemeral fan-out subscription. kafkajs can only consume through a consumer group, so each
 * subscription is the only member of its own uniquely named group
 * (`<clientId>.subscription.<topic>.<uuid>`), which never commits offsets and is deleted on
 * close: no durable consumer's group is touched.
 *
 * Positions are Kafka's own: the partition and the record offset, in the log named after the
 * Kafka topic. The subscription starts at each partition's high watermark as read when it is set
 * up, or just after `after.point` (checked against the watermarks first, see `startAfter`). Where
 * it is lives in memory: after every (re)join (a broker restart, a crash) it seeks each partition
 * to just after the last record it delivered. So events are delivered at most once each, and
 * none are skipped across a reconnect while Kafka retains them.
 */
export class KafkaFanOutSubscription implements Subscription {
  readonly groupId: string;
  /** The Kafka topic's name: what a cursor's log must equal. */
  readonly log: string;
  private readonly kafkaTopic: KafkaTopicSpec;
  /** Per partition, the offset of the next record to deliver. */
  private readonly next = new Map<number, number>();
  private startPoint: LogPoint | undefined;
  private readonly closing = new AbortController();
  private readonly logger: Logger;
  private member: GroupMember | undefined;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly topic: string,
    private readonly onEvent: (event: GatewayEvent, position: LogPosition) => void,
    private readonly deps: FanOutDeps,
    private readonly after?: FanOutOptions['after'],
  ) {
    this.kafkaTopic = topicSpec(deps.options, topic);
    this.log = this.kafkaTopic.name;
    this.groupId = `${deps.options.clientId}.subscription.${topic}.${randomUUID()}`;
    this.logger = deps.logger.child({ topic, groupId: this.groupId });
  }

  /**
   * Empty until the watermarks were read, which `open()` waits for unless Kafka is unreachable
   * for longer than `readyTimeoutMs`.
   */
  get start(): LogPoint {
    return this.startPoint ?? {};
  }

  /**
   * Resolves once the subscription is assigned and positioned, or after `readyTimeoutMs` while it
   * keeps joining in the background. Rejects with `CursorExpiredError` / `InvalidCursorError` for
   * an `after` Kafka cannot resume from, and with `BrokerUnavailableError` when the watermarks to
   * check `after` against could not be read in time; the subscription is closed then.
   */
  async open(): Promise<void> {
    if (this.after && this.after.log !== this.log) {
      throw new CursorExpiredError(`the cursor is for Kafka topic "${this.after.log}", not "${this.log}"`);
    }
    let ready: boolean;
    try {
      ready = await within(this.setUp(), this.deps.options.readyTimeoutMs);
    } catch (error) {
      await this.close();
      throw error;
    }
    if (ready || this.closing.signal.aborted) return;
    if (this.after && !this.startPoint) {
      await this.close();
      throw new BrokerUnavailableError(`could not read the offsets of Kafka topic ${this.log} to resume after the cursor`);
    }
    this.logger.warn('kafka subscription not joined yet; joining in the background');
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutDown());
  }

  private async setUp(): Promise<void> {
    const { topics, admin } = this.deps;
    const bounds = await retryUntilDone(
      async () => {
        await topics.ensure([this.kafkaTopic]);
        return admin.fetchTopicOffsets(this.log);
      },
      {
        signal: this.closing.signal,
        onError: (error, attempt, retryInMs) => this.logger.warn({ err: error, attempt, retryInMs }, 'could not set up kafka subscription; retrying'),
      },
    );
    if (!bounds || this.closing.signal.aborted) return;
    const { next, start } = this.after ? startAfter(bounds, this.after.point) : startFromEnd(bounds);
    for (const [partition, offset] of next) this.next.set(partition, offset);
    this.startPoint = start;
    this.logger.debug({ start, after: this.after?.point }, 'kafka subscription positioned');
    this.member = new GroupMember(
      this.deps.kafka,
      {
        groupId: this.groupId,
        // Only partitions without a position of ours use this (added after set-up, or reset by
        // kafkajs from an offset Kafka no longer keeps): every record there is one not yet seen.
        topics: [{ topic: this.log, fromBeginning: true }],
        eachBatch: (payload) => this.eachBatch(payload),
        onJoin: (assignment) => this.onJoin(assignment),
      },
      this.deps.options,
      this.deps.monitor,
      this.logger,
    );
    this.member.start();
    await this.member.ready;
  }

  private onJoin(assignment: Assignment): void {
    for (const partition of assignment[this.log] ?? []) {
      const offset = this.next.get(partition);
      if (offset !== undefined) this.member!.consumer.seek({ topic: this.log, partition, offset: String(offset) });
    }
  }

  private async eachBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    for (const message of batch.messages) {
      if (this.closing.signal.aborted) return;
      const offset = Number(message.offset);
      const next = this.next.get(batch.partition);
      resolveOffset(message.offset);
      if (next !== undefined && offset < next) continue;
      this.next.set(batch.partition, offset + 1);
      const position: LogPosition = { partition: String(batch.partition), offset };
      deliverToSubscriber(
        message.value ?? '',
        this.topic,
        (event) => this.onEvent(event, position),
        this.logger,
        { partition: batch.partition, offset: message.offset },
        traceHeaders((name) => message.headers?.[name]),
      );
    }
  }

  private async shutDown(): Promise<void> {
    this.closing.abort();
    if (!this.member) return;
    await this.member.stop();
    try {
      await this.deps.admin.deleteGroups([this.groupId]);
    } catch (error) {
      const groups = (error as { groups?: { error?: { type?: string } }[] }).groups;
      // Kafka may already have dropped the empty, offset-less group on its own.
      if (!groups?.every((g) => g.error?.type === 'GROUP_ID_NOT_FOUND')) {
        this.logger.warn({ err: error }, 'could not delete the subscription’s kafka consumer group; Kafka expires it');
      }
    }
  }
}
