import { errorMessage } from '../errors.js';
import type { DeadLetterRepository, DeadLetterRow } from '../store/dead-letter-repository.js';
import type { ProcessedMessageRepository } from '../store/processed-message-repository.js';
import type { BackoffPolicy } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import type { EventHandler } from './handlers/handler.js';
import type { DeliveryHandler, HandlerOutcome } from './delivery-runtime.js';
import { ACK, compose, type Middleware } from './middleware.js';
import { correlation, correlationIdOf } from './middlewares/correlation.js';
import { deadLetter } from './middlewares/dead-letter.js';
import { rejectInvalid, typeFilter } from './middlewares/filters.js';
import { idempotency } from './middlewares/idempotency.js';
import { retry } from './middlewares/retry.js';
import { currentTraceContext, tracing } from './middlewares/tracing.js';
import type { Tracing } from '../tracing/tracing.js';

export interface ConsumerDefinition {
  /** Unique name; also the broker-side consumer/queue/group name. */
  readonly name: string;
  readonly topic: string;
  /** Event types to handle; absent or empty means all. */
  readonly types?: readonly string[] | undefined;
  /** Handler runs before a message is dead-lettered. */
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  /** Deliveries handled at once by this process. */
  readonly prefetch: number;
  readonly handler: EventHandler;
  /** What the handler is, for the `consumers` query: "webhook <url>" or "function". */
  readonly description: string;
}

/** A retry scheduled this long ago and never seen again was taken by another process or dropped. */
const RETRY_FORGET_AFTER_MS = 60_000;
/** Past this many tracked retries, expired ones are swept as new ones come in. */
const RETRIES_TRACKED_BEFORE_SWEEP = 10_000;
/** When something outside the handler threw (the store, a bug), try the delivery again after this. */
const UNEXPECTED_FAILURE_RETRY_MS = 5000;

/** How the deliveries of one consumer in this process were settled, since it started. */
export interface ConsumerTotals {
  /** Acknowledged as done: handled, or skipped (already handled, or a type it does not take). */
  processed: number;
  /** Failed an attempt and will be tried again (the handler, or the gateway around it, failed). */
  retried: number;
  /** Gave up on and recorded as dead letters. */
  deadLettered: number;
}

/** Live counters of one consumer in this process. */
export class ConsumerStats {
  /** Plain numbers, read by `/metrics` when it is scraped: counting costs a delivery nothing more. */
  readonly totals: ConsumerTotals = { processed: 0, retried: 0, deadLettered: 0 };
  /** Event id → when its next attempt is due, for failures waiting for another attempt. */
  private readonly retries = new Map<string, number>();

  /** Events waiting for another attempt in this process. */
  retrying(now = Date.now()): number {
    this.forget(now);
    return this.retries.size;
  }

  middleware(): Middleware {
    return (next) => async (delivery) => {
      const settlement = await next(delivery);
      if (settlement.kind === 'retry') {
        this.totals.retried++;
        // Retries taken by other processes are never settled here: keep the map from growing.
        if (this.retries.size >= RETRIES_TRACKED_BEFORE_SWEEP) this.forget(Date.now());
        this.retries.set(delivery.event.id, Date.now() + settlement.delayMs);
      } else {
        if (settlement.kind === 'ack') this.totals.processed++;
        else this.totals.deadLettered++;
        this.retries.delete(delivery.event.id);
      }
      return settlement;
    };
  }

  private forget(now: number): void {
    for (const [id, dueAt] of this.retries) if (this.expired(dueAt, now)) this.retries.delete(id);
  }

  private expired(dueAt: number, now: number): boolean {
    return dueAt + RETRY_FORGET_AFTER_MS < now;
  }
}

export interface PipelineDeps {
  readonly processed: ProcessedMessageRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly logger: Logger;
  readonly onDeadLetter?: ((row: DeadLetterRow) => void) | undefined;
  /** Spans around deliveries, while they are exported (checked when the pipeline is made). */
  readonly tracing?: Tracing | undefined;
}

/**
 * The pipeline every durable consumer's handler runs in, outermost first:
 * stats → guard → tracing (only while spans are exported) → correlation → dead-letter record →
 * reject undecodable → type filter → idempotency → retry → log failures → handler. How many run at once, and per-key order, are the
 * delivery runtime's (`DeliveryRuntime`), around this pipeline.
 */
export function createPipeline(definition: ConsumerDefinition, stats: ConsumerStats, deps: PipelineDeps): DeliveryHandler {
  const consumer = definition.name;
  const logger = deps.logger.child({ consumer });
  const tracer = deps.tracing?.tracer;
  const handle: DeliveryHandler = async (delivery) => {
    await definition.handler(delivery.event, {
      consumer,
      attempt: delivery.attempt,
      correlationId: correlationIdOf(delivery.event),
      trace: tracer && currentTraceContext(),
    });
    return ACK;
  };
  return compose(
    stats.middleware(),
    guard(logger),
    ...(tracer ? [tracing({ consumer, tracer, system: deps.tracing!.system })] : []),
    correlation(consumer),
    deadLetter({ consumer, repository: deps.deadLetters, logger, onDeadLetter: deps.onDeadLetter }),
    rejectInvalid(),
    typeFilter(definition.types),
    idempotency({
      consumer,
      repository: deps.processed,
      logger,
    }),
    retry({ maxAttempts: definition.maxAttempts, backoff: definition.backoff }),
    logFailures(logger),
  )(handle);
}

/** Every failed attempt is logged with the ids that find the message again, and passed on. */
const logFailures = (logger: Logger) =>
  onThrow(logger, 'warn', 'handler failed', (error) => {
    throw error;
  });

/**
 * Whatever throws outside the handler (the store behind idempotency or the dead-letter record, a
 * bug) becomes a retry after a pause, so no adapter ever sees a throw. The broker counts it as an
 * attempt like any other: a long store outage can use up a consumer's attempts.
 */
const guard = (logger: Logger) =>
  onThrow(logger, 'error', 'delivery failed outside its handler; it will be tried again', (error) => ({
    kind: 'retry',
    delayMs: UNEXPECTED_FAILURE_RETRY_MS,
    error: `gateway failure: ${errorMessage(error)}`,
  }));

/** Logs what the rest of the pipeline threw with the event's ids, then lets `then` settle it. */
function onThrow(logger: Logger, level: 'warn' | 'error', message: string, then: (error: unknown) => HandlerOutcome): Middleware {
  return (next) => async (delivery) => {
    try {
      return await next(delivery);
    } catch (error) {
      const { event } = delivery;
      logger[level](
        { err: error, eventId: event.id, topic: event.topic, type: event.type, attempt: delivery.attempt, correlationId: correlationIdOf(event) },
        message,
      );
      return then(error);
    }
  };
}
