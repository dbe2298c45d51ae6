import type { Consumer, EachBatchHandler, Kafka } from 'kafkajs';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { Logger } from '../../util/logger.js';
import type { ConnectionMonitor } from './connection-monitor.js';
import { isUnreachable } from './errors.js';
import { requestRetry } from './kafka-client.js';
import type { ResolvedKafkaOptions } from './options.js';
import { retryUntilDone } from '../../util/retrying.js';

export type Assignment = Readonly<Record<string, readonly number[]>>;

export interface GroupMemberConfig {
  readonly groupId: string;
  readonly topics: readonly { readonly topic: string; readonly fromBeginning: boolean }[];
  readonly eachBatch: EachBatchHandler;
  /**
   * Partitions whose batches `eachBatch` handles at once (kafkajs' `partitionsConsumedConcurrently`;
   * each partition's batches stay one at a time, in order).
   * @default 1
   */
  readonly partitionsAtOnce?: number;
  /**
   * Called on every group join, synchronously before the first fetch of the new generation (so it
   * may pause or seek partitions). What it returns settles when the member is positioned; `ready`
   * waits for the first one.
   */
  readonly onJoin: (assignment: Assignment) => Promise<void> | void;
}

/** Our own restarts, for crashes kafkajs does not restart from (non-retriable errors). */
const RESTART_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, multiplier: 2, jitter: 0.2 };

/**
 * One kafkajs consumer in a consumer group, kept alive: kafkajs restarts a consumer after a
 * retriable crash (a broker restart); this restarts it after any other crash too, with backoff,
 * until `stop()`. Offsets are never committed by kafkajs (`autoCommit: false`): owners commit
 * what they settled.
 */
export class GroupMember {
  readonly consumer: Consumer;
  /** Resolves once the first join was positioned (see `onJoin`). Never rejects. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private readonly stopping = new AbortController();
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly config: GroupMemberConfig,
    options: ResolvedKafkaOptions,
    private readonly monitor: ConnectionMonitor,
    private readonly logger: Logger,
  ) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.consumer = kafka.consumer({
      groupId: config.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      maxWaitTimeInMs: options.fetchMaxWaitMs,
      retry: { ...requestRetry(options), restartOnFailure: async () => !this.stopping.signal.aborted },
    });
    this.listen();
  }

  /** Connects, subscribes and runs in the background, retrying until it runs or is stopped. */
  start(): void {
    this.starting ??= this.run();
  }

  /** Leaves the group and disconnects. Resolves, never rejects. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.restartTimer);
    await this.starting;
    try {
      await this.consumer.disconnect();
    } catch (error) {
      this.logger.warn({ err: error, groupId: this.config.groupId }, 'kafka consumer did not disconnect cleanly');
    }
  }

  private async run(): Promise<void> {
    await retryUntilDone(
      async () => {
        await this.consumer.connect();
        // kafkajs keeps subscriptions across runs; subscribing again only repeats a metadata call.
        for (const { topic, fromBeginning } of this.config.topics) await this.consumer.subscribe({ topic, fromBeginning });
        await this.consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: this.config.partitionsAtOnce ?? 1,
          eachBatch: this.config.eachBatch,
        });
      },
      {
        signal: this.stopping.signal,
        backoff: RESTART_BACKOFF,
        onError: (error, attempt, retryInMs) => {
          this.monitor.failed(error, { groupId: this.config.groupId });
          this.logger.warn({ err: error, groupId: this.config.groupId, attempt, retryInMs }, 'kafka consumer could not start; retrying');
        },
      },
    );
  }

  private listen(): void {
    const { events } = this.consumer;
    const groupId = this.config.groupId;
    this.consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.monitor.up();
      this.restarts = 0;
      this.logger.debug({ groupId, memberId: payload.memberId, assignment: payload.memberAssignment }, 'joined kafka consumer group');
      // Synchronously: kafkajs fetches right after this event, and onJoin may pause or seek first.
      let positioned: Promise<void> | void;
      try {
        positioned = this.config.onJoin(payload.memberAssignment);
      } catch (error) {
        positioned = Promise.reject(error);
      }
      Promise.resolve(positioned).then(
        () => this.markReady(),
        (error: unknown) => this.logger.warn({ err: error, groupId }, 'could not position kafka consumer after joining'),
      );
    });
    // Not FETCH: kafkajs emits it after a fetch that failed on a closed connection, too.
    this.consumer.on(events.HEARTBEAT, () => this.monitor.up());
    this.consumer.on(events.REQUEST_TIMEOUT, ({ payload }) => this.monitor.note(new Error(`kafka ${payload.apiName} request to ${payload.broker} timed out`)));
    this.consumer.on(events.CRASH, ({ payload }) => {
      if (this.stopping.signal.aborted) return;
      this.monitor.failed(payload.error, { groupId });
      if (payload.restart) {
        // While Kafka is down this repeats; the monitor has reported the outage once already.
        const level = isUnreachable(payload.error) ? 'debug' : 'warn';
        this.logger[level]({ err: payload.error, groupId }, 'kafka consumer crashed; kafkajs restarts it');
        return;
      }
      const delayMs = backoffDelay(RESTART_BACKOFF, ++this.restarts);
      this.logger.error({ err: payload.error, groupId, retryInMs: delayMs }, 'kafka consumer crashed; restarting it');
      this.restartTimer = setTimeout(() => {
        this.starting = this.run();
      }, delayMs);
    });
  }
}
