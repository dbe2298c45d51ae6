import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, FanOutOptions, LogPoint, LogPosition } from '../../../src/brokers/broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createKafkaBroker, deleteTopicsCreatedByThisFile, headerText, KAFKA_HOST, KAFKA_PORT, readTopic, withAdmin } from '../../helpers/kafka.js';

const groupsNamed = (prefix: string) =>
  withAdmin(async (admin) => (await admin.listGroups()).groups.map((g) => g.groupId).filter((id) => id.startsWith(prefix)));

interface Received {
  readonly event: GatewayEvent;
  readonly position: LogPosition | null;
}

/** One publish per event: their order in the topic is the order here. */
async function publishInOrder(broker: Broker, events: readonly GatewayEvent[]): Promise<void> {
  for (const event of events) await broker.publish([event]);
}

/** The point at the end of the topic: per partition, the offset of its newest record (-1 when it has none). */
const endPoint = (topic: string): Promise<LogPoint> =>
  withAdmin(async (admin) => Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [String(p.partition), Number(p.high) - 1])));

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka fan-out subscriptions', () => {
    const brokers: Broker[] = [];
    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((b) => b.close()));
    });

    const connect = async (clientId = uniqueName('gw')) => {
      const broker = createKafkaBroker({ clientId });
      brokers.push(broker);
      await broker.connect();
      return broker;
    };

    const subscribe = async (broker: Broker, topic: string, options?: FanOutOptions) => {
      const received: Received[] = [];
      const subscription = await broker.subscribe(topic, (event, position) => received.push({ event, position }), options);
      return { subscription, received };
    };

    it('reads from the end of the topic in a group of its own, deleted on close', async () => {
      const topic = uniqueName('live');
      const clientId = uniqueName('gw');
      const broker = await connect(clientId);
      const old = makeEvent({ topic });
      await broker.publish([old]);

      const { subscription, received } = await subscribe(broker, topic);
      const groups = await groupsNamed(`${clientId}.subscription.${topic}.`);
      expect(groups).toHaveLength(1);
      const fresh = makeEvent({ topic });
      await broker.publish([fresh]);
      await waitFor(() => received.length >= 1, 15_000, 'fresh event');
      // The event published before subscribe() never arrives; the fresh one arrives once.
      const marker = makeEvent({ topic });
      await broker.publish([marker]);
      await waitFor(() => received.some((r) => r.event.id === marker.id), 15_000, 'marker');
      expect(received.map((r) => r.event.id)).toEqual([fresh.id, marker.id]);

      await subscription.close();
      expect(await groupsNamed(`${clientId}.subscription.${topic}.`)).toEqual([]);
    });

    it('delivers each event with its Kafka partition and offset, and reports the topic as log and where it started on every partition', async () => {
      const broker = await connect();
      const topic = uniqueName('positions');
      // Two keys on three partitions: at least one partition stays empty, the others differ in length.
      await publishInOrder(broker, [...Array.from({ length: 3 }, () => makeEvent({ topic, key: 'a' })), makeEvent({ topic, key: 'b' })]);
      const before = await endPoint(topic);
      expect(Object.keys(before)).toHaveLength(3);
      expect(Object.values(before)).toContain(-1);

      const { subscription, received } = await subscribe(broker, topic);
      expect(subscription.log).toBe(topic);
      expect(subscription.start).toEqual(before);
      const live = Array.from({ length: 9 }, (_, i) => makeEvent({ topic, key: `k${i}` }));
      await publishInOrder(broker, live);
      await waitFor(() => received.length >= live.length, 15_000, 'live events');

      const records = await readTopic(topic, 4 + live.length);
      const truth = new Map(records.map((r) => [headerText(r, 'ce_id'), { partition: String(r.partition), offset: Number(r.offset) }]));
      expect(received.map((r) => r.event.id).sort()).toEqual(live.map((e) => e.id).sort());
      for (const { event, position } of received) expect(position).toEqual(truth.get(event.id));
    });

    it('resumes after a point: exactly the records after it on each partition it names, all of the others, then live ones', async () => {
      const broker = await connect();
      const topic = uniqueName('resume');
      const { received: all } = await subscribe(broker, topic);
      const events = Array.from({ length: 18 }, (_, i) => makeEvent({ topic, key: `k${i % 6}`, data: { seq: i } }));
      await publishInOrder(broker, events);
      await waitFor(() => all.length >= events.length, 15_000, 'all events');
      const partitions = [...new Set(all.map((r) => r.position!.partition))].sort();
      expect(partitions).toEqual(['0', '1', '2']);
      // The point names two partitions, after the first record of each; the third starts at its beginning.
      const [first, second, unnamed] = partitions as [string, string, string];
      const firstOffsetOn = (partition: string) => all.find((r) => r.position!.partition === partition)!.position!.offset;
      const point: LogPoint = { [first]: firstOffsetOn(first), [second]: firstOffsetOn(second) };

      const resumed = await subscribe(await connect(), topic, { after: { log: topic, point } });
      expect(resumed.subscription.start).toEqual({ ...point, [unnamed]: -1 });
      const expected = all.filter((r) => r.position!.offset > (point[r.position!.partition] ?? -1));
      await waitFor(() => resumed.received.length >= expected.length, 15_000, 'records after the point');
      const byPartition = (list: Received[]) =>
        Object.fromEntries(partitions.map((p) => [p, list.filter((r) => r.position!.partition === p).map((r) => [r.position!.offset, r.event.id])]));
      expect(byPartition(resumed.received)).toEqual(byPartition(expected));

      const later = Array.from({ length: 6 }, (_, i) => makeEvent({ topic, key: `k${i}` }));
      await publishInOrder(broker, later);
      await waitFor(() => resumed.received.length >= expected.length + later.length, 15_000, 'live events');
      await new Promise((r) => setTimeout(r, 500));
      expect(
        resumed.received
          .slice(expected.length)
          .map((r) => r.event.id)
          .sort(),
      ).toEqual(later.map((e) => e.id).sort());
      expect(resumed.received).toHaveLength(expected.length + later.length);
    });

    it('refuses with CURSOR_EXPIRED a point whose following records Kafka deleted, and leaves no group behind', async () => {
      const clientId = uniqueName('gw');
      const broker = await connect(clientId);
      const topic = uniqueName('expired');
      const events = Array.from({ length: 6 }, () => makeEvent({ topic, key: 'one-partition' }));
      await publishInOrder(broker, events);
      const end = await endPoint(topic);
      const partition = Object.keys(end).find((p) => end[p] === 5)!;
      await withAdmin(async (admin) => {
        // kafkajs looks the partition leaders up in metadata it must have loaded first.
        await admin.fetchTopicMetadata({ topics: [topic] });
        await admin.deleteTopicRecords({ topic, partitions: [{ partition: Number(partition), offset: '3' }] });
      });

      // Records 2 and up were to come after offset 1; 2 is gone.
      await expect(subscribe(broker, topic, { after: { log: topic, point: { ...end, [partition]: 1 } } })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
      expect(await groupsNamed(`${clientId}.subscription.${topic}.`)).toEqual([]);
      // After offset 2 comes 3, the oldest record kept: that resumes.
      const resumed = await subscribe(broker, topic, { after: { log: topic, point: { ...end, [partition]: 2 } } });
      await waitFor(() => resumed.received.length >= 3, 15_000, 'kept records');
      expect(resumed.received.map((r) => r.event.id)).toEqual(events.slice(3).map((e) => e.id));
    });

    it('refuses with BAD_USER_INPUT a point past the end of a partition', async () => {
      const broker = await connect();
      const topic = uniqueName('past-end');
      await publishInOrder(
        broker,
        Array.from({ length: 3 }, () => makeEvent({ topic, key: 'one-partition' })),
      );
      const end = await endPoint(topic);
      const partition = Object.keys(end).find((p) => end[p] === 2)!;

      await expect(subscribe(broker, topic, { after: { log: topic, point: { ...end, [partition]: 3 } } })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      // At the very end is fine: nothing to replay, the next event arrives.
      const resumed = await subscribe(broker, topic, { after: { log: topic, point: end } });
      const next = makeEvent({ topic, key: 'one-partition' });
      await broker.publish([next]);
      await waitFor(() => resumed.received.length >= 1, 15_000, 'next event');
      expect(resumed.received.map((r) => [r.event.id, r.position])).toEqual([[next.id, { partition, offset: 3 }]]);
    });

    it('refuses with CURSOR_EXPIRED a cursor from another topic', async () => {
      const broker = await connect();
      const topic = uniqueName('mine');
      const other = uniqueName('other');
      await broker.publish([makeEvent({ topic: other })]);
      await expect(subscribe(broker, topic, { after: { log: other, point: await endPoint(other) } })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
    });
  });
}
