import { errorMessage } from '../../errors.js';
import type { DeadLetterRepository, DeadLetterRow } from '../../store/dead-letter-repository.js';
import type { Logger } from '../../util/logger.js';
import type { Middleware } from '../middleware.js';

/** If the dead letter cannot be written, keep the message at the broker and try again later. */
const RECORD_FAILED_RETRY_MS = 5000;

/**
 * Records a `dead_letters` row (event, consumer, error, attempts, first/last failure) for every
 * delivery that ends as a dead letter, before the broker is told, and announces it.
 */
export function deadLetter(deps: {
  consumer: string;
  repository: DeadLetterRepository;
  logger: Logger;
  onDeadLetter?: ((row: DeadLetterRow) => void) | undefined;
}): Middleware {
  return (next) => async (delivery) => {
    const settlement = await next(delivery);
    if (settlement.kind !== 'dead-letter') return settlement;
    const { event } = delivery;
    let row: DeadLetterRow;
    try {
      row = await deps.repository.record({ consumer: deps.consumer, event, error: settlement.error, attempts: delivery.attempt });
    } catch (error) {
      deps.logger.error(
        { err: error, consumer: deps.consumer, eventId: event.id, topic: event.topic },
        'could not record dead letter; the message stays with the broker',
      );
      return { kind: 'retry', delayMs: RECORD_FAILED_RETRY_MS, error: `could not record dead letter: ${errorMessage(error)}` };
    }
    deps.logger.warn(
      { consumer: deps.consumer, eventId: event.id, topic: event.topic, attempts: delivery.attempt, error: settlement.error, deadLetterId: row.id },
      'event dead-lettered',
    );
    try {
      deps.onDeadLetter?.(row);
    } catch (error) {
      deps.logger.error({ err: error, deadLetterId: row.id }, 'deadLettered listener failed');
    }
    return settlement;
  };
}
