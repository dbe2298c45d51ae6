import type { ProcessedMessageRepository } from '../../store/processed-message-repository.js';
import type { Logger } from '../../util/logger.js';
import { ACK, type Middleware } from '../middleware.js';

/**
 * Idempotent consumer: an event this consumer already handled is acknowledged without running
 * the handler again; a success is recorded as a `processed_messages` row, and the broker is told
 * only once that record is committed (`settleAfter`). The handler's slot does not wait for the
 * commit: records of concurrent deliveries share one, and a redelivery meanwhile is already known.
 */
export function idempotency(deps: {
  consumer: string;
  repository: ProcessedMessageRepository;
  logger: Logger;
}): Middleware {
  return (next) => async (delivery) => {
    const { event } = delivery;
    if (await deps.repository.has(deps.consumer, event.id)) {
      deps.logger.debug({ consumer: deps.consumer, eventId: event.id }, 'duplicate delivery skipped');
      return ACK;
    }
    const outcome = await next(delivery);
    if (outcome.kind !== 'ack') return outcome;
    const recorded = deps.repository.record(deps.consumer, event.id).catch((error: unknown) => {
      // The work is done; a failed bookkeeping write must not undo the ack. A later
      // redelivery of this id would run the handler again.
      deps.logger.error({ err: error, consumer: deps.consumer, eventId: event.id }, 'could not record processed event');
    });
    return { ...outcome, settleAfter: recorded };
  };
}
