import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery, Settlement } from '../../../src/brokers/broker.js';
import type { KafkaBroker } from '../../../src/brokers/kafka/kafka-broker.js';
import { encodeEvent } from '../../../src/events/codec.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, headerText, KAFKA_HOST, KAFKA_PORT, readTopic, withAdmin } from '../../helpers/kafka.js';
import { consumeWith } from '../../helpers/consume.js';

interface Seen {
  readonly id: string;
  readonly attempt: number;
  readonly at: number;
}

const record = (seen: Seen[], delivery: Delivery) => seen.push({ id: delivery.event.id, attempt: delivery.attempt, at: Date.now() });
const find = (seen: readonly Seen[], id: string, attempt: number) => seen.find((s) => s.id === id && s.attempt === attempt);
const ACK: Settlement = { kind: 'ack' };

const highWatermark = (topic: string) => withAdmin(async (admin) => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0));

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka durable consumers', () => {
    const brokers: KafkaBroker[] = [];
    const connect = async (overrides: Parameters<typeof createKafkaBroker>[0] = {}) => {
      const broker = createKafkaBroker(overrides);
      brokers.push(broker);
      await broker.connect();
      return broker;
    };
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });

    it('dead-letters to <consumer>.dlq: the original record with the error, attempts and origin', async () => {
      const topic = uniqueName('dlq');
      const name = uniqueName('dlq');
      const broker = await connect();
      const handle = await consumeWith(broker, { name, topic, prefetch: 2 }, async (delivery) =>
        delivery.attempt === 1 ? { kind: 'retry', delayMs: 100, error: 'busy' } : { kind: 'dead-letter', error: 'no such customer' },
      );
      const event = makeEvent({ topic, key: 'customer-9' });
      await broker.publish([event]);

      const [letter] = await readTopic(`${name}.dlq`, 1);
      expect(letter!.value!.equals(encodeEvent(event))).toBe(true);
      expect(letter!.key?.toString()).toBe('customer-9');
      expect(headerText(letter!, 'x-gateway-error')).toBe('no such customer');
      expect(headerText(letter!, 'x-gateway-attempt')).toBe('2');
      expect(headerText(letter!, 'x-gateway-consumer')).toBe(name);
      expect(headerText(letter!, 'x-gateway-origin')).toMatch(new RegExp(`^${name}\\.retry/\\d+/\\d+$`));
      expect(headerText(letter!, 'ce_id')).toBe(event.id);
      // Both the original and its retry copy were committed once settled.
      await waitFor(async () => (await handle.lag()) === 0, 15_000, 'lag 0');
    });

    it('holds a long retry without delaying a shorter one behind it or fresh messages', async () => {
      const topic = uniqueName('hol');
      const name = uniqueName('hol');
      // One partition: both retries share the one retry partition, the worst case for blocking.
      const broker = await connect({ topics: { [topic]: { partitions: 1 } } });
      const slow = makeEvent({ topic, key: 'a' });
      const quick = makeEvent({ topic, key: 'b' });
      const fresh = makeEvent({ topic, key: 'c' });
      const delays: Record<string, number> = { [slow.id]: 8000, [quick.id]: 500 };
      const seen: Seen[] = [];
      const handle = await consumeWith(broker, { name, topic, prefetch: 5 }, async (delivery) => {
        record(seen, delivery);
        const delayMs = delays[delivery.event.id];
        return delivery.attempt === 1 && delayMs ? { kind: 'retry', delayMs, error: 'later' } : ACK;
      });

      await broker.publish([slow]);
      // The slow retry is the first record of the retry partition before the quick one exists.
      await waitFor(async () => (await highWatermark(`${name}.retry`)) === 1, 15_000, 'slow retry written');
      await broker.publish([quick]);
      const quickSecond = await waitFor(() => find(seen, quick.id, 2), 15_000, 'quick retry');
      await broker.publish([fresh]);
      await waitFor(() => find(seen, fresh.id, 1), 15_000, 'fresh message');

      const slowFirst = find(seen, slow.id, 1)!;
      const quickFirst = find(seen, quick.id, 1)!;
      expect(quickSecond.at - quickFirst.at).toBeGreaterThanOrEqual(450);
      expect(quickSecond.at - slowFirst.at).toBeLessThan(5000);
      expect(find(seen, slow.id, 2)).toBeUndefined();

      // Closing does not wait for the held retry; it stays in Kafka, uncommitted.
      const closing = Date.now();
      await handle.close();
      expect(Date.now() - closing).toBeLessThan(5000);

      const again: Seen[] = [];
      await consumeWith(broker, { name, topic, prefetch: 5 }, async (delivery) => {
        record(again, delivery);
        return ACK;
      });
      const slowSecond = await waitFor(() => find(again, slow.id, 2), 20_000, 'slow retry after reattaching');
      expect(slowSecond.at).toBeGreaterThanOrEqual(slowFirst.at + 7990);
    });

    it('keeps every retry when more are waiting than it holds in memory', async () => {
      const topic = uniqueName('held');
      const broker = await connect({ maxDelayedRetries: 2, topics: { [topic]: { partitions: 1 } } });
      const seen: Seen[] = [];
      await consumeWith(broker, { name: uniqueName('held'), topic, prefetch: 10 }, async (delivery) => {
        record(seen, delivery);
        return delivery.attempt === 1 ? { kind: 'retry', delayMs: 1500, error: 'later' } : ACK;
      });
      const events = Array.from({ length: 7 }, (_, i) => makeEvent({ topic, key: `k${i}` }));
      await broker.publish(events);
      await waitFor(() => events.every((e) => find(seen, e.id, 2)), 20_000, 'every second attempt');
      for (const event of events) {
        expect(find(seen, event.id, 2)!.at - find(seen, event.id, 1)!.at).toBeGreaterThanOrEqual(1490);
      }
      expect(seen).toHaveLength(14);
    });

    it('retries a delivery whose handler throws', async () => {
      const topic = uniqueName('throws');
      const broker = await connect();
      const seen: Seen[] = [];
      await consumeWith(broker, { name: uniqueName('throws'), topic, prefetch: 1 }, async (delivery) => {
        record(seen, delivery);
        if (delivery.attempt === 1) throw new Error('handler bug');
        return ACK;
      });
      const event = makeEvent({ topic });
      await broker.publish([event]);
      const second = await waitFor(() => find(seen, event.id, 2), 15_000, 'second attempt');
      expect(second.at - find(seen, event.id, 1)!.at).toBeGreaterThanOrEqual(900);
    });

    it('reports lag per partition: high watermark minus committed offset', async () => {
      const topic = uniqueName('lag');
      const name = uniqueName('lag');
      const broker = await connect();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const handle = await consumeWith(broker, { name, topic, prefetch: 1 }, async () => {
        await gate;
        return ACK;
      });
      await broker.publish(Array.from({ length: 12 }, (_, i) => makeEvent({ topic, key: `k${i}` })));

      const mainLag = async () => (await handle.lagByPartition()).filter((p) => p.topic === topic);
      await waitFor(async () => (await mainLag()).reduce((sum, p) => sum + p.highWatermark, 0) === 12, 15_000, 'all 12 written');
      const partitions = await handle.lagByPartition();
      expect(
        partitions
          .filter((p) => p.topic === topic)
          .map((p) => p.partition)
          .sort(),
      ).toEqual([0, 1, 2]);
      expect(partitions.filter((p) => p.topic === `${name}.retry`).map((p) => p.lag)).toEqual([0, 0, 0]);
      for (const p of partitions.filter((p) => p.topic === topic)) expect(p).toMatchObject({ committed: 0, lag: p.highWatermark });
      expect(await handle.lag()).toBe(12);

      release();
      await waitFor(async () => (await handle.lag()) === 0, 15_000, 'lag 0');
      for (const p of await mainLag()) expect(p.committed).toBe(p.highWatermark);
    });

    it('starts a new consumer with what is published once consume() is called, also while it joins', async () => {
      const topic = uniqueName('start');
      const broker = await connect();
      const before = makeEvent({ topic });
      await broker.publish([before]);
      // Older than the one second the start position allows for clock skew between producers.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const handled: string[] = [];
      const consuming = consumeWith(broker, { name: uniqueName('start'), topic, prefetch: 5 }, async (delivery) => {
        handled.push(delivery.event.id);
        return ACK;
      });
      const during = makeEvent({ topic });
      await broker.publish([during]);
      await consuming;
      const after = makeEvent({ topic });
      await broker.publish([after]);
      await waitFor(() => handled.includes(during.id) && handled.includes(after.id), 15_000, 'events after consume()');
      expect(handled).not.toContain(before.id);
    });

    it('starts a new consumer two processes attach to at once: every event after the calls, none before, and the start survives a restart', async () => {
      const topic = uniqueName('race');
      const name = uniqueName('race');
      const [first, second] = await Promise.all([connect(), connect()]);
      const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
      const before = keys.map((key) => makeEvent({ topic, key }));
      await first!.publish(before);
      await new Promise((resolve) => setTimeout(resolve, 1500));

      const handled = new Set<string>();
      const handler = async (delivery: Delivery): Promise<Settlement> => {
        handled.add(delivery.event.id);
        return ACK;
      };
      // Both attachments start together, as two gateway processes restarted at once would, while
      // events keep arriving (on every partition: one key per partition at least).
      let starting = true;
      const during: string[] = [];
      const publishing = (async () => {
        for (let round = 0; starting; round++) {
          const events = keys.map((key) => makeEvent({ topic, key: `${key}-${round}` }));
          await second!.publish(events);
          during.push(...events.map((e) => e.id));
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      const handles = await Promise.all([first, second].map((broker) => consumeWith(broker!, { name, topic, prefetch: 5 }, handler)));
      starting = false;
      await publishing;
      expect(during.length).toBeGreaterThan(0);

      // The start is committed on every partition once the attachments run.
      const committed = await withAdmin((admin) => admin.fetchOffsets({ groupId: name, topics: [topic] }));
      expect(committed[0]!.partitions.map((p) => Number(p.offset) >= 0)).toEqual([true, true, true]);

      const after = keys.map((key) => makeEvent({ topic, key }));
      await first!.publish(after);
      const expected = [...during, ...after.map((e) => e.id)];
      await waitFor(() => expected.every((id) => handled.has(id)), 30_000, `${expected.length} events published after consume()`);
      expect(before.filter((e) => handled.has(e.id))).toEqual([]);

      // Stopped before the next event: both come back to where they were, not to a later "latest".
      await waitFor(async () => (await handles[0]!.lag()) === 0, 15_000, 'lag 0');
      await Promise.all(handles.map((handle) => handle.close()));
      const whileStopped = makeEvent({ topic, key: 'k0' });
      await first!.publish([whileStopped]);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await consumeWith(second!, { name, topic, prefetch: 5 }, handler);
      await waitFor(() => handled.has(whileStopped.id), 15_000, 'event published while stopped');
    });
  });
}
