import kafkajs from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../../../src/brokers/broker.js';
import { decodeEvent } from '../../../src/events/codec.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, KAFKA_HOST, KAFKA_PORT, readTopic } from '../../helpers/kafka.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

type Codec = { compress(encoder: unknown): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };

/** Counts what kafkajs's process-wide codec registry compresses and decompresses with `type`. */
function countCodec(type: typeof CompressionTypes.GZIP | typeof CompressionTypes.Snappy) {
  const registry = CompressionCodecs as unknown as Record<number, () => Codec>;
  const original = registry[type]!;
  const counts = { compressed: 0, decompressed: 0 };
  registry[type] = () => {
    const codec = original();
    return {
      compress: (encoder) => {
        counts.compressed++;
        return codec.compress(encoder);
      },
      decompress: (buffer) => {
        counts.decompressed++;
        return codec.decompress(buffer);
      },
    };
  };
  return { counts, restore: () => void (registry[type] = original) };
}

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka compression', () => {
    const brokers: Broker[] = [];
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });

    for (const [compression, type] of [
      ['gzip', CompressionTypes.GZIP],
      ['snappy', CompressionTypes.Snappy],
    ] as const) {
      it(`publishes ${compression}-compressed batches that plain clients and subscriptions read`, async () => {
        const codec = countCodec(type);
        try {
          const topic = uniqueName(compression);
          const broker = createKafkaBroker({ compression });
          brokers.push(broker);
          await broker.connect();
          const live: GatewayEvent[] = [];
          const subscription = await broker.subscribe(topic, (event) => live.push(event));
          const events = Array.from({ length: 50 }, (_, i) => makeEvent({ topic, data: { i, text: 'compressible '.repeat(20) } }));
          await broker.publish(events);

          const records = await readTopic(topic, 50);
          const read = records.map((r) => decodeEvent(r.value!, { topic }));
          expect(new Map(read.map((e) => [e.id, e]))).toEqual(new Map(events.map((e) => [e.id, e])));
          await waitFor(() => live.length === 50, 15_000, 'subscription');
          expect(new Set(live.map((e) => e.id))).toEqual(new Set(events.map((e) => e.id)));
          expect(codec.counts.compressed).toBeGreaterThan(0);
          expect(codec.counts.decompressed).toBeGreaterThan(0);
          await subscription.close();
        } finally {
          codec.restore();
        }
      });
    }
  });
}
