import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogPosition, Subscription } from '../../../src/brokers/broker.js';
import type { KafkaBroker } from '../../../src/brokers/kafka/kafka-broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, KAFKA_HOST, KAFKA_PORT } from '../../helpers/kafka.js';
import { consoleConsume, consoleProduce, requireJavaConsoleClients, type ConsoleRecord } from './java-console.js';

/** Odd, so that a partitioner that only looks at a few bits of the hash still shows. */
const PARTITIONS = 7;

/**
 * Keys that exercise murmur2 where implementations differ: every tail length (1–3 bytes past a
 * multiple of 4), bytes with the high bit set (UTF-8 of ü, 日, 🚀), spaces, a long key, and the
 * shapes gateway users write (`order-17`, UUIDs).
 */
const KEYS = [
  'a',
  'ab',
  'abc',
  'abcd',
  'abcde',
  'abcdef',
  'abcdefg',
  'abcdefgh',
  'ü',
  'üb',
  'Müller',
  'Größe-42',
  '日',
  '日本',
  '日本語-3',
  '🚀',
  'x🚀',
  'xy🚀z',
  'customer 9',
  ' leading space',
  'order-1',
  'order-2',
  'order-17',
  'order-255',
  'order-65536',
  'tenant/acme/invoice/2026-11',
  'k'.repeat(257),
  '0',
  '-1',
  '2147483647',
  ...Array.from({ length: 10 }, (_, i) => `user-${i * 7919}`),
  ...Array.from({ length: 4 }, () => randomUUID()),
];

interface Seen {
  readonly event: GatewayEvent;
  readonly position: LogPosition;
}

/** A structured CloudEvent as another service would write it to the topic. */
const cloudEvent = (id: string, key: string) =>
  JSON.stringify({ specversion: '1.0', id, source: 'urn:java-console-producer', type: 'key.checked', partitionkey: key, data: { key } });

const idOf = (record: ConsoleRecord): string => (JSON.parse(record.value) as { id: string }).id;

if ((await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) && (await requireJavaConsoleClients())) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka partitioning, checked against Kafka’s own Java console clients', () => {
    const closing: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const close of closing.splice(0).reverse()) await close();
    });

    const subscribe = async (broker: KafkaBroker, topic: string, options?: Parameters<KafkaBroker['subscribe']>[2]) => {
      const seen = new Map<string, Seen>();
      const subscription: Subscription = await broker.subscribe(topic, (event, position) => void seen.set(event.id, { event, position: position! }), options);
      closing.push(() => subscription.close());
      return { subscription, seen };
    };

    it('puts each key where Java’s default partitioner does, and reads keys Java’s producer wrote on the partitions it uses itself', async () => {
      const topic = uniqueName('murmur');
      const broker = createKafkaBroker({ topics: { [topic]: { partitions: PARTITIONS } } });
      closing.push(() => broker.close());
      await broker.connect();
      // Creates the topic with its partitions before Java's producer could auto-create it with one.
      const live = await subscribe(broker, topic);

      // Through the adapter: keyed events, and unkeyed ones (their Kafka key is their id).
      const keyed = KEYS.map((key) => makeEvent({ topic, key, id: `gw-${randomUUID()}` }));
      const unkeyed = Array.from({ length: 4 }, () => makeEvent({ topic, id: `gw-${randomUUID()}` }));
      const published = [...keyed, ...unkeyed];
      await broker.publish(published);
      const kafkaKeyOf = new Map(published.map((event) => [event.id, event.key ?? event.id]));

      // Through Java's producer: a record for every Kafka key the gateway used.
      const javaRecords = [...kafkaKeyOf.values()].map((key) => ({ id: `java-${randomUUID()}`, key }));
      await consoleProduce(
        topic,
        javaRecords.map(({ id, key }) => ({ key, value: cloudEvent(id, key) })),
      );
      for (const { id, key } of javaRecords) kafkaKeyOf.set(id, key);

      // Java's consumer: where every record is, and under which key bytes.
      const records = await consoleConsume(topic, kafkaKeyOf.size);
      const javaView = new Map(records.map((record) => [idOf(record), record]));
      expect([...javaView.keys()].sort()).toEqual([...kafkaKeyOf.keys()].sort());
      for (const [id, record] of javaView) expect(record.key, `key of ${id} as Java decodes it`).toBe(kafkaKeyOf.get(id));

      // Same key, same partition, whichever producer wrote it: the gateway's partitioner is Java's.
      const partitionByKey = new Map<string, number>();
      for (const { id, key } of javaRecords) partitionByKey.set(key, javaView.get(id)!.partition);
      const misplaced = published
        .filter((event) => javaView.get(event.id)!.partition !== partitionByKey.get(kafkaKeyOf.get(event.id)!))
        .map((event) => ({ key: kafkaKeyOf.get(event.id), gateway: javaView.get(event.id)!.partition, java: partitionByKey.get(kafkaKeyOf.get(event.id)!) }));
      expect(misplaced).toEqual([]);
      // The keys spread: a partitioner sending everything to one partition would pass the above.
      expect(new Set(partitionByKey.values()).size).toBeGreaterThanOrEqual(PARTITIONS - 1);

      // The gateway reads every record on the partition Java's consumer saw it on, live…
      await waitFor(() => live.seen.size >= kafkaKeyOf.size, 30_000, `${kafkaKeyOf.size} records on the live subscription`);
      const positionsOf = (seen: Map<string, Seen>) => new Map([...seen].map(([id, { position }]) => [id, Number(position.partition)]));
      expect(positionsOf(live.seen)).toEqual(new Map([...javaView].map(([id, record]) => [id, record.partition])));
      for (const { id, key } of javaRecords) expect(live.seen.get(id)!.event.key, `key of ${id} as the gateway reads it`).toBe(key);

      // …and replaying from the point the live subscription started, to the same partitions and offsets.
      const replay = await subscribe(broker, topic, { after: { log: live.subscription.log!, point: live.subscription.start } });
      await waitFor(() => replay.seen.size >= kafkaKeyOf.size, 30_000, `${kafkaKeyOf.size} records replayed`);
      expect(new Map([...replay.seen].map(([id, { position }]) => [id, position]))).toEqual(
        new Map([...live.seen].map(([id, { position }]) => [id, position])),
      );
    });
  });
}
