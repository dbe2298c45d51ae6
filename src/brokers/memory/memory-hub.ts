import type { GatewayEvent } from '../../events/event.js';
import { randomUUID } from 'node:crypto';
import { SETTING_DEFAULTS } from '../../config/config.js';
import type { ConsumerBinding, DeliverySink, LogPosition, Settlement } from '../broker.js';
import { TopicLog } from './topic-log.js';

interface QueuedMessage {
  readonly event: GatewayEvent;
  readonly attempt: number;
}

interface Worker {
  readonly sink: DeliverySink;
  readonly window: number;
  unsettled: number;
  closed: boolean;
}

/**
 * One durable consumer's queue: messages wait here until an attached worker has room, and come
 * back here after a retry delay. Workers share the queue round-robin.
 */
class MemoryQueue {
  readonly ready: QueuedMessage[] = [];
  private readonly workers: Worker[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private nextWorker = 0;

  constructor(readonly binding: Pick<ConsumerBinding, 'name' | 'topic' | 'types'>) {}

  accepts(event: GatewayEvent): boolean {
    const types = this.binding.types;
    return event.topic === this.binding.topic && (!types?.length || types.includes(event.type));
  }

  enqueue(message: QueuedMessage): void {
    this.ready.push(message);
    this.dispatch();
  }

  get delayed(): number {
    return this.timers.size;
  }

  attach(sink: DeliverySink, window: number): Worker {
    const worker: Worker = { sink, window: Math.max(1, window), unsettled: 0, closed: false };
    this.workers.push(worker);
    this.dispatch();
    return worker;
  }

  async detach(worker: Worker): Promise<void> {
    worker.closed = true;
    await worker.sink.idle();
    const index = this.workers.indexOf(worker);
    if (index >= 0) this.workers.splice(index, 1);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.ready.length > 0) {
      const worker = this.pickWorker();
      if (!worker) return;
      const message = this.ready.shift()!;
      this.deliver(worker, message);
    }
  }

  private pickWorker(): Worker | undefined {
    for (let i = 0; i < this.workers.length; i++) {
      const worker = this.workers[(this.nextWorker + i) % this.workers.length]!;
      if (!worker.closed && worker.unsettled < worker.window) {
        this.nextWorker = (this.nextWorker + i + 1) % this.workers.length;
        return worker;
      }
    }
    return undefined;
  }

  private deliver(worker: Worker, message: QueuedMessage): void {
    worker.unsettled++;
    worker.sink.push({
      event: message.event,
      attempt: message.attempt,
      ids: { consumer: this.binding.name },
      settle: async (settlement) => {
        this.settle(message, settlement);
        worker.unsettled--;
        this.dispatch();
      },
    });
  }

  private settle(message: QueuedMessage, settlement: Settlement): void {
    switch (settlement.kind) {
      case 'ack':
      case 'dead-letter':
        // The pipeline has recorded the dead letter in the store; this broker keeps no copy.
        return;
      case 'retry': {
        const timer = setTimeout(
          () => {
            this.timers.delete(timer);
            this.enqueue({ event: message.event, attempt: message.attempt + 1 });
          },
          Math.max(0, settlement.delayMs),
        );
        timer.unref();
        this.timers.add(timer);
        return;
      }
    }
  }
}

type Listener = (event: GatewayEvent, position: LogPosition) => void;

export interface MemoryHubOptions {
  /**
   * Events kept per subscribed topic for subscribers that resume (`TopicLog`).
   * @default the default of `MEMORY_RETAIN_EVENTS`
   */
  readonly retainEvents?: number;
}

/**
 * The in-process "broker server": topics, their logs and durable queues. Several
 * `MemoryBroker` connections can share one hub, which is how tests model several gateway
 * processes on one broker. Nothing here survives the process.
 */
export class MemoryHub {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly logs = new Map<string, TopicLog>();
  private readonly queues = new Map<string, MemoryQueue>();
  /** Identity of this hub's logs: a cursor from another process names another epoch. */
  readonly epoch = `memory-${randomUUID()}`;
  private readonly retainEvents: number;

  constructor(options: MemoryHubOptions = {}) {
    this.retainEvents = options.retainEvents ?? SETTING_DEFAULTS.brokers.memory.retainEvents;
  }

  publish(event: GatewayEvent): void {
    const log = this.logs.get(event.topic);
    if (log) {
      const position: LogPosition = { partition: '', offset: log.append(event) };
      for (const listener of this.listeners.get(event.topic) ?? []) deliverLater(listener, event, position);
    }
    for (const queue of this.queues.values()) {
      if (queue.accepts(event)) queue.enqueue({ event, attempt: 1 });
    }
  }

  /**
   * Calls `listener` for every event of `topic` from now on, or after `after` (an offset of this
   * hub's log of the topic) first; the log is kept from the first listener on. Returns where it
   * starts and how to stop. Throws `CursorExpiredError` / `InvalidCursorError` for an `after`
   * the log cannot serve.
   */
  listen(topic: string, listener: Listener, after?: number): { start: number; stop: () => void } {
    let log = this.logs.get(topic);
    if (!log) this.logs.set(topic, (log = new TopicLog(this.epoch, this.retainEvents)));
    // Collected and registered in one synchronous step, and delivered in order through the
    // microtask queue: no live event can slip in between the replayed ones or before them.
    const replayed = after === undefined ? [] : log.after(after);
    for (const { offset, event } of replayed) deliverLater(listener, event, { partition: '', offset });
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return {
      start: after ?? log.end,
      stop: () => {
        set.delete(listener);
        if (set.size === 0 && this.listeners.get(topic) === set) this.listeners.delete(topic);
      },
    };
  }

  /** Returns the consumer's queue, creating it (bound to its topic and types) on first use. */
  queue(binding: Pick<ConsumerBinding, 'name' | 'topic' | 'types'>): MemoryQueue {
    let queue = this.queues.get(binding.name);
    if (!queue) this.queues.set(binding.name, (queue = new MemoryQueue(binding)));
    return queue;
  }
}

/** A listener's own failure must not stop delivery to the others or the publish itself. */
function deliverLater(listener: Listener, event: GatewayEvent, position: LogPosition): void {
  queueMicrotask(() => {
    try {
      listener(event, position);
    } catch {
      /* listeners handle their own errors; see SubscriptionHub */
    }
  });
}
