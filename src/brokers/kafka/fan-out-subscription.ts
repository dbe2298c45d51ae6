import { randomUUID } from 'node:crypto';
import type { Admin, EachBatchPayload, Kafka } from 'kafkajs';
import { deliverToSubscriber } from '../delivery.js';
import type { GatewayEvent } from '../../events/event.js';
import type { Logger } from '../../util/logger.js';
import type { Subscription } from '../broker.js';
import type { ConnectionMonitor } from './connection-monitor.js';
import { GroupMember, type Assignment } from './group-member.js';
import { topicSpec, type ResolvedKafkaOptions } from './options.js';
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
 * Its position lives in memory: it starts at the end of the topic as it was when `subscribe()`
 * was called, and after every (re)join (a broker restart, a crash) it seeks each partition to
 * just after the last event it delivered. So events are delivered at most once each, none are
 * skipped across a reconnect while Kafka retains them, and nothing is replayed to a new one.
 */
export class KafkaFanOutSubscription implements Subscription {
  readonly groupId: string;
  private readonly next = new Map<number, string>();
  private readonly closing = new AbortController();
  private readonly logger: Logger;
  private member: GroupMember | undefined;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly topic: string,
    private readonly onEvent: (event: GatewayEvent) => void,
    private readonly deps: FanOutDeps,
  ) {
    this.groupId = `${deps.options.clientId}.subscription.${topic}.${randomUUID()}`;
    this.logger = deps.logger.child({ topic, groupId: this.groupId });
  }

  /** Resolves once the subscription is assigned and positioned (or after `readyTimeoutMs`). */
  async start(): Promise<void> {
    const ready = await within(this.setUp(), this.deps.options.readyTimeoutMs);
    if (!ready && !this.closing.signal.aborted) this.logger.warn('kafka subscription not joined yet; joining in the background');
  }

  close(): Promise<void> {
    return (this.closed ??= this.shutDown());
  }

  private async setUp(): Promise<void> {
    const { topics, admin, options } = this.deps;
    const started = await retryUntilDone(
      async () => {
        await topics.ensure([topicSpec(options, this.topic)]);
        for (const { partition, high } of await admin.fetchTopicOffsets(this.topic)) this.next.set(partition, high);
        return true;
      },
      {
        signal: this.closing.signal,
        onError: (error, attempt, retryInMs) => this.logger.warn({ err: error, attempt, retryInMs }, 'could not set up kafka subscription; retrying'),
      },
    );
    if (!started || this.closing.signal.aborted) return;
    this.member = new GroupMember(
      this.deps.kafka,
      {
        groupId: this.groupId,
        topics: [{ topic: this.topic, fromBeginning: false }],
        eachBatch: (payload) => this.eachBatch(payload),
        onJoin: (assignment) => this.onJoin(assignment),
      },
      options,
      this.deps.monitor,
      this.logger,
    );
    this.member.start();
    await this.member.ready;
  }

  private onJoin(assignment: Assignment): void {
    for (const partition of assignment[this.topic] ?? []) {
      const offset = this.next.get(partition);
      // A partition added after subscribe() has no position yet: kafkajs starts it at the end.
      if (offset !== undefined) this.member!.consumer.seek({ topic: this.topic, partition, offset });
    }
  }

  private async eachBatch({ batch, resolveOffset }: EachBatchPayload): Promise<void> {
    for (const message of batch.messages) {
      if (this.closing.signal.aborted) return;
      const next = this.next.get(batch.partition);
      resolveOffset(message.offset);
      if (next !== undefined && Number(message.offset) < Number(next)) continue;
      this.next.set(batch.partition, String(Number(message.offset) + 1));
      deliverToSubscriber(message.value ?? '', this.topic, this.onEvent, this.logger, { partition: batch.partition, offset: message.offset });
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
