import type { Broker } from '../src/brokers/broker.js';
import { MemoryBroker } from '../src/brokers/memory/memory-broker.js';
import type { GatewayEvent } from '../src/events/event.js';

/** One broker as the benchmark drives it: the gateway's adapter and the plain client, side by side. */
export interface BenchTarget {
  /** The adapter the relay publishes through. */
  readonly broker: Broker;
  /** What both paths wait for before counting an event as published. */
  readonly durability: string;
  /** Publishes one batch with the plain client and resolves when the broker confirmed all of it. */
  rawPublish(batch: readonly GatewayEvent[]): Promise<void>;
  /** Empties what the runs left behind (queues), so rounds start alike. */
  drain?(): Promise<void>;
  close(): Promise<void>;
}

export type BenchTargetFactory = (topic: string) => Promise<BenchTarget>;

export const BENCH_TARGETS: Record<string, BenchTargetFactory> = {
  async memory() {
    const broker = new MemoryBroker();
    await broker.connect();
    return {
      broker,
      durability: 'none (in process)',
      rawPublish: async (batch) => {
        for (const event of batch) broker.hub.publish(event);
      },
      close: () => broker.close(),
    };
  },
};
