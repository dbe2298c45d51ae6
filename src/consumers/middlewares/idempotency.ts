import type { ProcessedMessageRepository } from '../../store/processed-message-repository.js';
import type { Logger } from '../../util/logger.js';
import { ACK, type Middleware } from '../middleware.js';

/**
 * Idempotent consumer: an event this consumer already handled is acknowledged without running
 * the handler again; a success is recorded as a `processed_messages` row, and the broker is told
 * only once that record is committed (`settleAfter`). The handler's slot does not wait for the
 * commit: records of concurrent deliveries share one, and a redelivery meanwhile is already known.
 * A record the store refuses is written again once it answers (`recordDurably`).
 */
export function idempotency(deps: { consumer: string; repository: ProcessedMessageRepository; logger: Logger }): Middleware {
  return (next) => async (delivery) => {
    const { event } = delivery;
    if (await deps.repository.has(deps.consumer, event.id)) {
      deps.logger.debug({ consumer: deps.consumer, eventId: event.id }, 'duplicate delivery skipped');
      return ACK;
    }
    const outcome = await next(delivery);
    if (outcome.kind !== 'ack') return outcome;
    return { ...outcome, settleAfter: recordDurably(deps, event.id) };
  };
}

/** First wait before recording a success again after the store refused it; doubles up to the max. */
const RECORD_RETRY_INITIAL_MS = 100;
const RECORD_RETRY_MAX_MS = 5000;
/** How long a success is held unsettled while the store is down, before it is acked unrecorded. */
const RECORD_GIVE_UP_MS = 5 * 60_000;

/**
 * Records a success, trying again while the store is unavailable (a database restart, a failover):
 * the delivery stays unsettled meanwhile, so the broker is told only once the record is committed,
 * and the consumer's window fills and pauses it rather than racing ahead of its bookkeeping. After
 * `RECORD_GIVE_UP_MS` the work, which is done, is acknowledged anyway: only a redelivery of this id
 * (after a crash) would then run the handler again. Never rejects.
 */
async function recordDurably(deps: { consumer: string; repository: ProcessedMessageRepository; logger: Logger }, eventId: string): Promise<void> {
  const giveUpAt = Date.now() + RECORD_GIVE_UP_MS;
  for (let wait = RECORD_RETRY_INITIAL_MS, attempt = 1; ; wait = Math.min(wait * 2, RECORD_RETRY_MAX_MS), attempt++) {
    try {
      await deps.repository.record(deps.consumer, eventId);
      if (attempt > 1) deps.logger.info({ consumer: deps.consumer, eventId, attempt }, 'processed event recorded after the store came back');
      return;
    } catch (error) {
      if (Date.now() + wait > giveUpAt) {
        deps.logger.error({ err: error, consumer: deps.consumer, eventId }, 'could not record processed event; acknowledging it unrecorded');
        return;
      }
      if (attempt === 1) deps.logger.warn({ err: error, consumer: deps.consumer, eventId }, 'could not record processed event; trying again');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
