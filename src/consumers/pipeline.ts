import type { DeliveryHandler } from '../brokers/broker.js';
import type { DeadLetterRepository, DeadLetterRow } from '../store/dead-letter-repository.js';
import type { ProcessedMessageRepository } from '../store/processed-message-repository.js';
import type { BackoffPolicy } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import type { EventHandler } from './handlers/handler.js';
import { ACK, compose, type Middleware } from './middleware.js';
import { correlation, correlationIdOf } from './middlewares/correlation.js';
import { deadLetter } from './middlewares/dead-letter.js';
import { rejectInvalid, typeFilter } from './middlewares/filters.js';
import { idempotency } from './middlewares/idempotency.js';
import { keyOrder } from './middlewares/key-order.js';
import { retry } from './middlewares/retry.js';

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

/** Live counters of one consumer in this process. */
export class ConsumerStats {
  /** Event ids that failed and are waiting for another attempt. */
  readonly retrying = new Set<string>();
  handled = 0;
  duplicatesSkipped = 0;
  failedAttempts = 0;

  middleware(): Middleware {
    return (next) => async (delivery) => {
      const settlement = await next(delivery);
      const id = delivery.event.id;
      if (settlement.kind === 'retry') {
        this.retrying.add(id);
        this.failedAttempts++;
      } else {
        this.retrying.delete(id);
        if (settlement.kind === 'dead-letter') this.failedAttempts++;
        else this.handled++;
      }
      return settlement;
    };
  }
}

export interface PipelineDeps {
  readonly processed: ProcessedMessageRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly logger: Logger;
  readonly onDeadLetter?: ((row: DeadLetterRow) => void) | undefined;
}

/**
 * The pipeline every durable consumer's handler runs in, outermost first:
 * stats → per-key order → correlation → dead-letter record → reject undecodable → type filter →
 * idempotency → retry → handler.
 */
export function createPipeline(definition: ConsumerDefinition, stats: ConsumerStats, deps: PipelineDeps): DeliveryHandler {
  const consumer = definition.name;
  const logger = deps.logger.child({ consumer });
  const handle: DeliveryHandler = async (delivery) => {
    await definition.handler(delivery.event, {
      consumer,
      attempt: delivery.attempt,
      correlationId: correlationIdOf(delivery.event),
    });
    return ACK;
  };
  return compose(
    stats.middleware(),
    keyOrder(),
    correlation(consumer),
    deadLetter({ consumer, repository: deps.deadLetters, logger, onDeadLetter: deps.onDeadLetter }),
    rejectInvalid(),
    typeFilter(definition.types),
    idempotency({
      consumer,
      repository: deps.processed,
      logger,
      onDuplicate: () => stats.duplicatesSkipped++,
    }),
    retry({ maxAttempts: definition.maxAttempts, backoff: definition.backoff }),
    logFailures(logger),
  )(handle);
}

/** Every failed attempt is logged with the ids that find the message again. */
function logFailures(logger: Logger): Middleware {
  return (next) => async (delivery) => {
    try {
      return await next(delivery);
    } catch (error) {
      const { event } = delivery;
      logger.warn(
        { err: error, eventId: event.id, topic: event.topic, type: event.type, attempt: delivery.attempt, correlationId: correlationIdOf(event) },
        'handler failed',
      );
      throw error;
    }
  };
}
