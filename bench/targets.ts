import type { Broker } from '../src/brokers/broker.js';
import { MemoryBroker } from '../src/brokers/memory/memory-broker.js';
import { KafkaBroker } from '../src/brokers/kafka/kafka-broker.js';
import { NatsBroker } from '../src/brokers/nats/nats-broker.js';
import { RabbitMqBroker } from '../src/brokers/rabbitmq/rabbitmq-broker.js';
import { loadConfig } from '../src/config/config.js';
import { silentLogger } from '../src/util/logger.js';
import { rawKafka, rawNats, rawRabbitMq, type RawClient } from './raw-clients.js';
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

/** Broker addresses and names from the same environment variables the gateway reads. */
const settings = loadConfig({ ...process.env, GATEWAY_CONFIG: undefined }).brokers;

async function pair(broker: Broker, raw: RawClient, durability: string): Promise<BenchTarget> {
  await broker.connect();
  return {
    broker,
    durability,
    rawPublish: (batch) => raw.publish(batch),
    drain: () => raw.drain(),
    close: async () => {
      await raw.close();
      await broker.close();
    },
  };
}

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

  async rabbitmq(topic) {
    // The raw client's queue is bound first, so both paths publish routable, confirmed messages.
    const raw = await rawRabbitMq(settings.rabbitmq.url, settings.rabbitmq.exchange, topic);
    const broker = new RabbitMqBroker({ ...settings.rabbitmq, topics: {} }, silentLogger);
    return pair(broker, raw, 'publisher confirms, persistent, mandatory');
  },

  async kafka(topic) {
    const raw = await rawKafka(settings.kafka.brokers, topic, settings.kafka.partitions);
    const broker = new KafkaBroker({ ...settings.kafka, compression: 'none', topics: {} }, silentLogger);
    return pair(broker, raw, 'idempotent producer, acks=-1');
  },

  async nats(topic) {
    // The adapter creates the stream the raw client publishes into.
    const broker = new NatsBroker({ ...settings.nats, topics: {} }, silentLogger);
    await broker.connect();
    const raw = await rawNats(settings.nats.url, topic);
    return pair(broker, raw, 'JetStream PubAck per event, Nats-Msg-Id');
  },
};
