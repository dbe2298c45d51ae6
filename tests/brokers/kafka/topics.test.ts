import kafkajs from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../../src/brokers/broker.js';
import { toCloudEvent } from '../../../src/events/codec.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, headerText, KAFKA_HOST, KAFKA_PORT, readTopic, withAdmin } from '../../helpers/kafka.js';
import { consumeWith } from '../../helpers/consume.js';

const { ConfigResourceTypes } = kafkajs;

async function topicConfig(topic: string): Promise<{ partitions: number; retentionMs: string | undefined }> {
  return withAdmin(async (admin) => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    });
    return {
      partitions: topics[0]!.partitions.length,
      retentionMs: resources[0]!.configEntries.find((e) => e.configName === 'retention.ms')?.configValue,
    };
  });
}

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka topics and records', () => {
    const brokers: Broker[] = [];
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });

    it('creates each topic on first use with its configured partitions and retention.ms', async () => {
      const tuned = uniqueName('tuned');
      const plain = uniqueName('plain');
      const consumer = uniqueName('billing');
      const broker = createKafkaBroker({ partitions: 2, topics: { [tuned]: { partitions: 5, ttlMs: 3_600_000 } } });
      brokers.push(broker);
      await broker.connect();

      await broker.publish([makeEvent({ topic: tuned }), makeEvent({ topic: plain })]);
      const handle = await consumeWith(broker, { name: consumer, topic: tuned, prefetch: 1 }, async () => ({ kind: 'ack' }));
      await handle.close();

      expect(await topicConfig(tuned)).toEqual({ partitions: 5, retentionMs: '3600000' });
      const plainConfig = await topicConfig(plain);
      expect(plainConfig.partitions).toBe(2);
      expect(plainConfig.retentionMs).not.toBe('3600000');
      // A consumer's own topics follow its topic's partitions, keeping the broker's retention.
      for (const own of [`${consumer}.retry`, `${consumer}.dlq`]) {
        const config = await topicConfig(own);
        expect(config.partitions).toBe(5);
        expect(config.retentionMs).not.toBe('3600000');
      }
    });

    it('keys records by event key (else id), keeps a key on one partition, and sends ce_ headers', async () => {
      const topic = uniqueName('keys');
      const broker = createKafkaBroker();
      brokers.push(broker);
      await broker.connect();
      const keys = ['order-1', 'order-2', 'order-3', 'order-4', 'order-5', 'order-6'];
      const keyed = Array.from({ length: 10 }, (_, round) =>
        keys.map((key) => makeEvent({ topic, key, subject: `s/${round}`, causationId: `cause-${round}`, data: { round } })),
      );
      for (const wave of keyed) await broker.publish(wave);
      const unkeyed = Array.from({ length: 6 }, () => makeEvent({ topic }));
      await broker.publish(unkeyed);

      const records = await readTopic(topic, 66);
      expect(records).toHaveLength(66);
      const byId = new Map(records.map((r) => [headerText(r, 'ce_id'), r]));

      const partitionsOfKey = new Map<string, Set<number>>();
      for (const event of keyed.flat()) {
        const record = byId.get(event.id)!;
        expect(record.key?.toString()).toBe(event.key);
        partitionsOfKey.set(event.key!, (partitionsOfKey.get(event.key!) ?? new Set()).add(record.partition));
      }
      for (const [, partitions] of partitionsOfKey) expect(partitions.size).toBe(1);
      // Six keys over three partitions: the partitioner spreads them (murmur2 of these keys).
      expect(new Set([...partitionsOfKey.values()].flatMap((p) => [...p])).size).toBeGreaterThan(1);
      for (const event of unkeyed) expect(byId.get(event.id)!.key?.toString()).toBe(event.id);

      const event = keyed[3]![1]!;
      const record = byId.get(event.id)!;
      expect(JSON.parse(record.value!.toString())).toEqual(JSON.parse(JSON.stringify(toCloudEvent(event))));
      const headers = Object.fromEntries(Object.keys(record.headers ?? {}).map((name) => [name, headerText(record, name)]));
      expect(headers).toEqual({
        ce_specversion: '1.0',
        ce_id: event.id,
        ce_source: event.source,
        ce_type: event.type,
        ce_time: event.time.toISOString(),
        ce_topic: topic,
        ce_subject: 's/3',
        ce_partitionkey: event.key,
        ce_correlationid: event.correlationId,
        ce_causationid: 'cause-3',
        'x-correlation-id': event.correlationId,
        'content-type': 'application/cloudevents+json',
      });
    });
  });
}
