import type { Broker, ConsumerBinding, DeliverySink } from '../../src/brokers/broker.js';
import { MemoryBroker } from '../../src/brokers/memory/memory-broker.js';
import { BrokerUnavailableError, PublishError, UnroutableEventError } from '../../src/errors.js';
import type { GatewayEvent } from '../../src/events/event.js';

/**
 * Fault injection for unit tests of the relay: a real memory broker whose publish can be made
 * to fail (whole batches, single events, or permanently) or to hang until released, and whose
 * fan-out subscriptions can be made to fail. Every
 * confirmed event is recorded in `published`, in confirmation order.
 */
export class FlakyBroker implements Broker {
  readonly kind = 'flaky';
  readonly inner = new MemoryBroker();
  readonly features = this.inner.features;
  readonly published: GatewayEvent[] = [];
  publishCalls = 0;
  /** While true, every publish fails as if the broker were down. */
  down = false;
  /** Event ids that fail (once each) with a retryable error. */
  readonly failOnce = new Set<string>();
  /** Event ids the broker refuses for good. */
  readonly rejectForever = new Set<string>();
  /** Topics nothing is bound to: their events come back unroutable. */
  readonly unroutableTopics = new Set<string>();
  /** Topics whose fan-out subscription fails with an error the gateway does not expect (a bug, a broker quirk). */
  readonly brokenTopics = new Set<string>();
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  async connect(): Promise<void> {}

  async publish(events: readonly GatewayEvent[]): Promise<void> {
    this.publishCalls++;
    if (this.gate) await this.gate;
    if (this.down) throw new BrokerUnavailableError('broker is down');
    const failures = new Map<string, Error>();
    for (const event of events) {
      if (this.unroutableTopics.has(event.topic)) {
        failures.set(event.id, new UnroutableEventError(`nothing bound for ${event.topic}`));
      } else if (this.rejectForever.has(event.id)) {
        failures.set(event.id, Object.assign(new Error('refused for good'), { retryable: false }));
      } else if (this.failOnce.delete(event.id)) {
        failures.set(event.id, new Error('not confirmed'));
      } else {
        await this.inner.publish([event]);
        this.published.push(event);
      }
    }
    if (failures.size > 0) throw new PublishError(`${failures.size} not confirmed`, failures);
  }

  subscribe(...args: Parameters<Broker['subscribe']>) {
    if (this.brokenTopics.has(args[0])) return Promise.reject(new Error(`internal detail: no fan-out for ${args[0]} at 10.0.0.7`));
    return this.inner.subscribe(...args);
  }

  consume(binding: ConsumerBinding, sink: DeliverySink) {
    return this.inner.consume(binding, sink);
  }

  redeliver(binding: ConsumerBinding, event: GatewayEvent) {
    return this.inner.redeliver(binding, event);
  }

  status() {
    return { connected: !this.down, lastError: this.down ? 'broker is down' : null };
  }

  close() {
    return this.inner.close();
  }
}
