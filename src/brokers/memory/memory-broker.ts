import { BrokerUnavailableError, CursorExpiredError } from '../../errors.js';
import type { GatewayEvent } from '../../events/event.js';
import type {
  Broker,
  BrokerConnectionStatus,
  BrokerFeatures,
  ConsumerBinding,
  ConsumerHandle,
  DeliverySink,
  FanOutOptions,
  LogPosition,
  Subscription,
} from '../broker.js';
import { MemoryHub } from './memory-hub.js';

export interface MemoryBrokerOptions {
  /**
   * The hub to connect to. Give several brokers one hub to model several gateway processes on
   * one broker.
   * @default a new hub of its own
   */
  hub?: MemoryHub;
}

/**
 * The embedded default broker: runs in the gateway process, needs no setup, and keeps nothing
 * across a restart (the outbox, dead letters and processed ids live in SQLite and do).
 */
export class MemoryBroker implements Broker {
  readonly kind = 'memory';
  readonly features: BrokerFeatures = {
    persistent: false,
    sharedConsumers: true,
    orderedByKey: true,
    publishDeduplication: false,
    lag: true,
    durableConsumers: true,
    replay: true,
  };
  readonly hub: MemoryHub;
  private closed = false;
  private readonly consumers = new Set<ConsumerHandle>();
  private readonly subscriptions = new Set<Subscription>();

  constructor(options: MemoryBrokerOptions = {}) {
    this.hub = options.hub ?? new MemoryHub();
  }

  async connect(): Promise<void> {}

  async publish(events: readonly GatewayEvent[]): Promise<void> {
    this.assertOpen();
    for (const event of events) this.hub.publish(event);
  }

  async subscribe(topic: string, onEvent: (event: GatewayEvent, position: LogPosition) => void, options: FanOutOptions = {}): Promise<Subscription> {
    this.assertOpen();
    const { after } = options;
    if (after && after.log !== this.hub.epoch) {
      throw new CursorExpiredError('the cursor is from a memory broker that is gone (the gateway restarted); it keeps nothing across a restart');
    }
    const { start, stop } = this.hub.listen(topic, onEvent, after ? (after.point[''] ?? 0) : undefined);
    const subscription: Subscription = {
      log: this.hub.epoch,
      start: { '': start },
      close: async () => {
        stop();
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  async consume(binding: ConsumerBinding, sink: DeliverySink): Promise<ConsumerHandle> {
    this.assertOpen();
    const queue = this.hub.queue(binding);
    const worker = queue.attach(sink, binding.window);
    const handle: ConsumerHandle = {
      lag: async () => queue.ready.length + queue.delayed,
      close: async () => {
        await queue.detach(worker);
        this.consumers.delete(handle);
      },
    };
    this.consumers.add(handle);
    return handle;
  }

  async redeliver(binding: ConsumerBinding, event: GatewayEvent): Promise<void> {
    this.assertOpen();
    this.hub.queue(binding).enqueue({ event, attempt: 1 });
  }

  status(): BrokerConnectionStatus {
    return { connected: !this.closed, lastError: null };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.close()));
    await Promise.all([...this.subscriptions].map((s) => s.close()));
  }

  private assertOpen(): void {
    if (this.closed) throw new BrokerUnavailableError('memory broker is closed');
  }
}
