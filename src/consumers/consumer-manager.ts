import type { Broker, ConsumerBinding, ConsumerHandle } from '../brokers/broker.js';
import { INVALID_MESSAGE_TYPE } from '../events/codec.js';
import { BrokerUnavailableError, ConflictError, errorMessage, NotFoundError } from '../errors.js';
import { deadLetterEvent, type DeadLetterRepository, type DeadLetterRow } from '../store/dead-letter-repository.js';
import type { ProcessedMessageRepository } from '../store/processed-message-repository.js';
import { pruneInBatches } from '../store/prune.js';
import type { Logger } from '../util/logger.js';
import type { Tracing } from '../tracing/tracing.js';
import { within } from '../util/retrying.js';
import { DeliveryRuntime } from './delivery-runtime.js';
import { ConsumerStats, createPipeline, type ConsumerDefinition, type ConsumerTotals } from './pipeline.js';

export interface ConsumerStatus {
  readonly name: string;
  readonly topic: string;
  readonly types: readonly string[];
  readonly handler: string;
  readonly maxAttempts: number;
  readonly running: boolean;
  /** Events this consumer has handled successfully (all processes, from the store). */
  readonly processed: number;
  /** Events that failed and wait for another attempt in this process. */
  readonly retrying: number;
  /** Dead letters of this consumer still in status DEAD. */
  readonly deadLettered: number;
  /** Messages waiting at the broker, when the broker can tell. */
  readonly lag: number | null;
}

export interface ConsumerManagerDeps {
  readonly broker: Broker;
  readonly processed: ProcessedMessageRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly logger: Logger;
  readonly onDeadLetter?: ((row: DeadLetterRow) => void) | undefined;
  /** Processed-event records older than this are pruned; 0 keeps them forever. */
  readonly processedRetentionMs?: number;
  /** Spans around deliveries while they are exported (see `createPipeline`). */
  readonly tracing?: Tracing | undefined;
}

/** How often old processed-event records are pruned. */
const PRUNE_INTERVAL_MS = 3600_000;
/**
 * The broker-side window of an attachment, in multiples of its `prefetch` (handler calls at
 * once): the next message waits at hand when one finishes, instead of a broker round trip away.
 */
const WINDOW_PER_PREFETCH = 2;

interface RunningConsumer {
  readonly definition: ConsumerDefinition;
  readonly binding: ConsumerBinding;
  readonly stats: ConsumerStats;
  handle: ConsumerHandle | undefined;
}

/** Runs the configured durable consumers on the broker and answers for them (status, replay). */
export class ConsumerManager {
  private readonly consumers = new Map<string, RunningConsumer>();
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<void> | undefined;
  private readonly stopped = new AbortController();

  constructor(
    private readonly deps: ConsumerManagerDeps,
    definitions: readonly ConsumerDefinition[],
  ) {
    for (const definition of definitions) {
      if (this.consumers.has(definition.name)) throw new Error(`consumer "${definition.name}" is defined twice`);
      this.consumers.set(definition.name, {
        definition,
        binding: {
          name: definition.name,
          topic: definition.topic,
          types: definition.types,
          window: definition.prefetch * WINDOW_PER_PREFETCH,
          maxAttempts: definition.maxAttempts,
          backoff: definition.backoff,
        },
        stats: new ConsumerStats(),
        handle: undefined,
      });
    }
  }

  async start(): Promise<void> {
    const retention = this.deps.processedRetentionMs ?? 0;
    if (retention > 0 && this.consumers.size > 0) {
      this.pruneTimer = setInterval(() => this.pruneProcessed(retention), PRUNE_INTERVAL_MS).unref();
    }
    // Attached side by side: each may wait for its broker-side setup (a queue, a group join).
    const results = await Promise.allSettled(
      [...this.consumers.values()].map(async (consumer) => {
        const pipeline = createPipeline(consumer.definition, consumer.stats, this.deps);
        const runtime = new DeliveryRuntime(pipeline, {
          concurrency: consumer.definition.prefetch,
          logger: this.deps.logger.child({ consumer: consumer.definition.name }),
        });
        consumer.handle = await this.deps.broker.consume(consumer.binding, runtime);
        this.deps.logger.info(
          { consumer: consumer.definition.name, topic: consumer.definition.topic, handler: consumer.definition.description },
          'consumer started',
        );
      }),
    );
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) {
      // All or none: the consumers that did attach are detached again before the failure is told.
      await this.stop();
      throw failed.reason;
    }
  }

  /** Stops taking deliveries and waits for handler calls in flight. */
  async stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.stopped.abort();
    await this.pruning;
    await Promise.all(
      [...this.consumers.values()].map(async (consumer) => {
        const handle = consumer.handle;
        consumer.handle = undefined;
        await handle?.close();
      }),
    );
  }

  private pruneProcessed(retentionMs: number): void {
    if (this.pruning) return;
    const before = Date.now() - retentionMs;
    const { processed, logger } = this.deps;
    this.pruning = pruneInBatches((batchSize) => processed.prune(before, batchSize), this.stopped.signal)
      .then((pruned) => {
        if (pruned > 0) logger.info({ pruned }, 'pruned old processed-event records');
      })
      .catch((error: unknown) => logger.warn({ err: error }, 'could not prune processed-event records'))
      .finally(() => {
        this.pruning = undefined;
      });
  }

  /**
   * Lag is best effort: a broker that cannot tell now, or not within `timeoutMs`, shows null, and
   * the reason is logged.
   */
  private async lagOf(name: string, handle: ConsumerHandle, timeoutMs?: number): Promise<number | null> {
    try {
      const lag = handle.lag();
      if (timeoutMs === undefined || (await within(lag, timeoutMs))) return await lag;
      this.deps.logger.warn({ consumer: name, timeoutMs }, 'consumer lag not read: the broker did not answer in time');
      return null;
    } catch (error) {
      this.deps.logger.warn({ err: error, consumer: name }, 'could not read consumer lag');
      return null;
    }
  }

  names(): string[] {
    return [...this.consumers.keys()];
  }

  /** Each consumer's settlement counters in this process (live objects: read, never write). */
  totals(): { consumer: string; totals: Readonly<ConsumerTotals>; retrying: number }[] {
    return [...this.consumers.values()].map(({ definition, stats }) => ({ consumer: definition.name, totals: stats.totals, retrying: stats.retrying() }));
  }

  /** Messages waiting at the broker per running consumer, as in `statuses`; null where the broker cannot tell within `timeoutMs`. */
  async lags(timeoutMs: number): Promise<Map<string, number | null>> {
    const running = [...this.consumers.values()].filter((consumer) => consumer.handle !== undefined);
    const lags = await Promise.all(running.map(({ definition, handle }) => this.lagOf(definition.name, handle!, timeoutMs)));
    return new Map(running.map(({ definition }, i) => [definition.name, lags[i]!]));
  }

  async statuses(): Promise<ConsumerStatus[]> {
    const [processed, dead] = await Promise.all([this.deps.processed.countByConsumer(), this.deps.deadLetters.countByConsumer('DEAD')]);
    return Promise.all(
      [...this.consumers.values()].map(async ({ definition, stats, handle }) => ({
        name: definition.name,
        topic: definition.topic,
        types: definition.types ?? [],
        handler: definition.description,
        maxAttempts: definition.maxAttempts,
        running: handle !== undefined,
        processed: processed.get(definition.name) ?? 0,
        retrying: stats.retrying(),
        deadLettered: dead.get(definition.name) ?? 0,
        lag: handle ? await this.lagOf(definition.name, handle) : null,
      })),
    );
  }

  /**
   * Sends a DEAD letter's stored event back to its consumer, and only that consumer, as a first
   * attempt. The letter becomes REPLAYED; if the consumer fails it again, it returns to DEAD.
   */
  async replay(id: number): Promise<DeadLetterRow> {
    const letter = await this.deps.deadLetters.get(id);
    if (!letter) throw new NotFoundError(`dead letter ${id} does not exist`);
    const consumer = this.consumers.get(letter.consumer);
    if (!consumer) {
      throw new ConflictError(`dead letter ${id} belongs to consumer "${letter.consumer}", which this gateway does not run`);
    }
    const event = deadLetterEvent(letter);
    if (event.type === INVALID_MESSAGE_TYPE) {
      // Its stand-in event is not what was sent: replaying it would hand the handler a fake.
      throw new ConflictError(`dead letter ${id} holds a message that was not a valid CloudEvent; it cannot be replayed, only discarded`);
    }
    // Claim the letter first so two replays of one letter cannot both send it.
    const replayed = await this.deps.deadLetters.transition(id, 'DEAD', 'REPLAYED');
    if (!replayed) throw new ConflictError(`dead letter ${id} is ${letter.status}; only DEAD letters can be replayed`);
    try {
      await this.deps.broker.redeliver(consumer.binding, event);
    } catch (error) {
      await this.deps.deadLetters.transition(id, 'REPLAYED', 'DEAD');
      this.deps.logger.error({ err: error, deadLetterId: id, consumer: letter.consumer, eventId: letter.eventId }, 'replay failed');
      throw new BrokerUnavailableError(`could not replay dead letter ${id}: ${errorMessage(error)}`, { cause: error });
    }
    this.deps.logger.info({ deadLetterId: id, consumer: letter.consumer, eventId: letter.eventId }, 'dead letter replayed');
    return replayed;
  }

  /** Marks a DEAD letter as DISCARDED: the operator has decided nobody will handle it. */
  async discard(id: number): Promise<DeadLetterRow> {
    const letter = await this.deps.deadLetters.get(id);
    if (!letter) throw new NotFoundError(`dead letter ${id} does not exist`);
    const discarded = await this.deps.deadLetters.transition(id, 'DEAD', 'DISCARDED');
    if (!discarded) throw new ConflictError(`dead letter ${id} is ${letter.status}; only DEAD letters can be discarded`);
    return discarded;
  }
}
