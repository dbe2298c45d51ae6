/**
 * The plain clients the benchmark measures the relay against. Each publishes exactly what the
 * adapter publishes (same body, headers, routing and durability) and waits for the same broker
 * confirmation, so the ratio measures the relay and adapter, not a different workload.
 */
import { connect as amqpConnect } from 'amqplib';
import { CompressionTypes, Kafka, logLevel } from 'kafkajs';
import { connect as natsConnect, headers as natsHeaders } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { cloudEventHeaders } from '../src/brokers/headers.js';
import { encodeEvent } from '../src/events/codec.js';
import type { GatewayEvent } from '../src/events/event.js';

export interface RawClient {
  publish(batch: readonly GatewayEvent[]): Promise<void>;
  /** Empties what was published so far (where the broker keeps it in a queue). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Confirm channel, persistent messages, mandatory routing, routing key `<topic>.<type>`. */
export async function rawRabbitMq(url: string, exchange: string, topic: string): Promise<RawClient> {
  const connection = await amqpConnect(url);
  const channel = await connection.createConfirmChannel();
  await channel.assertExchange(exchange, 'topic', { durable: true });
  // Both paths need a bound queue: unroutable messages are errors, as the adapter treats them.
  const queue = `bench.${topic}`;
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, exchange, `${topic}.#`);
  return {
    async publish(batch) {
      for (const event of batch) {
        channel.publish(exchange, `${event.topic}.${event.type}`, encodeEvent(event), {
          persistent: true,
          mandatory: true,
          contentType: 'application/cloudevents+json',
          messageId: event.id,
          headers: cloudEventHeaders(event, 'cloudEvents:'),
        });
      }
      await channel.waitForConfirms();
    },
    async drain() {
      await channel.purgeQueue(queue);
    },
    async close() {
      await channel.deleteQueue(queue);
      await connection.close();
    },
  };
}

/** Idempotent producer, acks = -1, key = event key, `ce_` headers. */
export async function rawKafka(brokers: readonly string[], topic: string, partitions: number): Promise<RawClient> {
  const kafka = new Kafka({ clientId: 'bench-raw', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    async publish(batch) {
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.None,
        messages: batch.map((event) => ({ key: event.key ?? event.id, value: encodeEvent(event), headers: cloudEventHeaders(event, 'ce_') })),
      });
    },
    async drain() {},
    async close() {
      await producer.disconnect();
    },
  };
}

/** JetStream publish with `Nats-Msg-Id`, every PubAck awaited. */
export async function rawNats(url: string, topic: string): Promise<RawClient> {
  const connection = await natsConnect({ servers: url });
  const js = jetstream(connection);
  return {
    async publish(batch) {
      await Promise.all(
        batch.map((event) => {
          const h = natsHeaders();
          for (const [name, value] of Object.entries(cloudEventHeaders(event, 'ce-'))) h.set(name, value);
          return js.publish(`events.${topic}.${event.type}`, encodeEvent(event), { msgID: event.id, headers: h });
        }),
      );
    },
    async drain() {},
    async close() {
      await connection.drain();
    },
  };
}
