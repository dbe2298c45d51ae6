import type { Delivery, DeliverySink, InboundDelivery, Settlement } from '../brokers/broker.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../util/logger.js';

/**
 * What a consumer's pipeline decides for one delivery: a settlement, and optionally work that must
 * be durable before the broker is told (the processed-message record of an ack). The handler's
 * slot and its key are free as soon as the outcome is known; only the broker waits.
 */
export type HandlerOutcome = Settlement & { readonly settleAfter?: Promise<unknown> };

/**
 * Handles one delivery. Must not throw; if it does anyway, the runtime settles the delivery as a
 * retry after a short delay and logs it.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<HandlerOutcome>;

export interface DeliveryRuntimeOptions {
  /** Handler calls at once: the consumer's `prefetch`. */
  readonly concurrency: number;
  readonly logger: Logger;
}

/** Delay before redelivering a message whose handler threw instead of returning a settlement. */
const HANDLER_THREW_RETRY_MS = 1000;

/**
 * Runs what one consumer attachment receives: the single place that decides how many deliveries
 * run at once and in which order, whatever the broker. Deliveries start in arrival order, at most
 * `concurrency` at once, and one at a time per event key; a delivery whose key is busy waits
 * without taking a slot, so one busy key never stalls the others. Each outcome is carried out
 * through the delivery's own `settle`, after its `settleAfter` (if any) has settled.
 *
 * The adapter bounds what waits here by its window (`ConsumerBinding.window`); this class keeps
 * no limit of its own.
 */
export class DeliveryRuntime implements DeliverySink {
  private readonly waiting: InboundDelivery[] = [];
  private readonly busyKeys = new Set<string>();
  private running = 0;
  private unsettled = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;

  constructor(
    private readonly handler: DeliveryHandler,
    private readonly options: DeliveryRuntimeOptions,
  ) {
    this.concurrency = Math.max(1, options.concurrency);
  }

  push(delivery: InboundDelivery): void {
    this.unsettled++;
    this.waiting.push(delivery);
    this.pump();
  }

  idle(): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.concurrency; ) {
      const key = this.waiting[i]!.event.key;
      if (key !== null && this.busyKeys.has(key)) {
        i++;
        continue;
      }
      const [delivery] = this.waiting.splice(i, 1);
      this.start(delivery!);
    }
  }

  private start(delivery: InboundDelivery): void {
    const key = delivery.event.key;
    this.running++;
    if (key !== null) this.busyKeys.add(key);
    const stopped = delivery.started?.();
    void this.handle(delivery)
      .then((outcome) => {
        this.running--;
        if (key !== null) this.busyKeys.delete(key);
        this.pump();
        return this.carryOut(delivery, outcome);
      })
      .finally(() => {
        stopped?.();
        if (--this.unsettled === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      });
  }

  private async handle(delivery: InboundDelivery): Promise<HandlerOutcome> {
    try {
      return await this.handler(delivery);
    } catch (error) {
      this.options.logger.error({ err: error, ...delivery.ids, eventId: delivery.event.id, attempt: delivery.attempt }, 'delivery handler threw; retrying');
      return { kind: 'retry', delayMs: HANDLER_THREW_RETRY_MS, error: errorMessage(error) };
    }
  }

  private async carryOut(delivery: InboundDelivery, { settleAfter, ...settlement }: HandlerOutcome): Promise<void> {
    // settleAfter never rejects (its owner logs its own failure); the catch is only a guard.
    if (settleAfter) await settleAfter.catch(() => undefined);
    try {
      await delivery.settle(settlement as Settlement);
    } catch (error) {
      this.options.logger.error({ err: error, ...delivery.ids, eventId: delivery.event.id, settlement: settlement.kind }, 'could not settle a delivery');
    }
  }
}
