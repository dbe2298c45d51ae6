import type { Logger } from '../../util/logger.js';
import type { Delivery, DeliveryHandler, Settlement } from '../broker.js';
import { runHandler } from '../delivery.js';

/** A delivery received from NATS, with how to carry out its settlement there. */
export interface QueuedDelivery {
  readonly delivery: Delivery;
  /** Ids that find the message again (consumer, subject, stream sequence), for logs. */
  readonly ids: Readonly<Record<string, unknown>>;
  /** Carries out the handler's settlement at the broker. */
  settle(settlement: Settlement): void;
  /** Called as the handler starts; returns what to call when it ends (JetStream reports progress). */
  running?(): () => void;
}

/**
 * Runs deliveries through the handler in the order they arrived, at most `concurrency` at once
 * (the handler's per-key ordering relies on being called in arrival order). A handler that throws
 * despite its contract is settled as a retry after a short delay; a settlement that cannot be
 * carried out is logged with the message's ids (the broker then redelivers it).
 */
export class DeliveryQueue {
  private readonly waiting: QueuedDelivery[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly handler: DeliveryHandler,
    private readonly concurrency: number,
    private readonly logger: Logger,
  ) {}

  /** Deliveries waiting for a free handler slot. */
  get backlog(): number {
    return this.waiting.length;
  }

  push(item: QueuedDelivery): void {
    this.waiting.push(item);
    this.pump();
  }

  /** Resolves once nothing waits and no handler call runs. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < Math.max(1, this.concurrency) && this.waiting.length > 0) this.run(this.waiting.shift()!);
  }

  private run(item: QueuedDelivery): void {
    this.running++;
    const stopRunning = item.running?.();
    const event = item.delivery.event;
    void runHandler(this.handler, item.delivery, this.logger, item.ids)
      .then((settlement) => {
        try {
          item.settle(settlement);
        } catch (error) {
          this.logger.error(
            { err: error, ...item.ids, eventId: event.id, settlement: settlement.kind },
            'could not settle a delivery; NATS delivers it again',
          );
        }
      })
      .finally(() => {
        stopRunning?.();
        this.running--;
        this.pump();
        if (this.running === 0 && this.waiting.length === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      });
  }
}
