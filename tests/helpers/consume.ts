import type { ConsumerBinding, ConsumerHandle, Delivery, DeliverySink, Settlement } from '../../src/brokers/broker.js';
import { DeliveryRuntime } from '../../src/consumers/delivery-runtime.js';
import { silentLogger } from '../../src/util/logger.js';

/** A binding as the adapter tests write it: `prefetch` is both the window and the handler calls at once. */
export type TestBinding = Omit<ConsumerBinding, 'window'> & { readonly prefetch: number };

/**
 * Attaches `handler` to a durable consumer the way the gateway does, through a delivery runtime,
 * with the window equal to `prefetch`: what the adapter tests exercise is the adapter.
 */
export function consumeWith<H extends ConsumerHandle>(
  broker: { consume(binding: ConsumerBinding, sink: DeliverySink): Promise<H> },
  binding: TestBinding,
  handler: (delivery: Delivery) => Promise<Settlement>,
): Promise<H> {
  return broker.consume(bindingOf(binding), new DeliveryRuntime(handler, { concurrency: binding.prefetch, logger: silentLogger }));
}

/** The binding an adapter sees for a test binding. */
export function bindingOf({ prefetch, ...rest }: TestBinding): ConsumerBinding {
  return { ...rest, window: prefetch };
}
