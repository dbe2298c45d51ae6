import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { LogPosition } from '../../../src/brokers/broker.js';
import type { RabbitMqBroker, RabbitMqBrokerOptions } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { CursorExpiredError, InvalidCursorError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { sleep } from '../../../src/util/backoff.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createRabbitMqBroker, deleteRabbitMqObjects, listQueues, plainClient, streamQueue } from '../../helpers/rabbitmq.js';

interface Received {
  readonly id: string;
  readonly position: LogPosition | null;
}

/** The offset of the first message a stream still keeps, read as a plain client would. */
async function firstKeptOffset(queue: string): Promise<number | undefined> {
  const client = await plainClient();
  try {
    await client.channel.prefetch(1);
    const first = new Promise<number | undefined>((resolve, reject) => {
      setTimeout(() => resolve(undefined), 2000);
      client.channel
        .consume(queue, (message) => resolve(message?.properties.headers?.['x-stream-offset'] as number | undefined), {
          arguments: { 'x-stream-offset': 'first' },
        })
        .catch(reject);
    });
    return await first;
  } finally {
    await client.close();
  }
}

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  describe('RabbitMQ: subscriptions with log positions, resuming after a point', () => {
    const streams = new Set<string>();
    const brokers: RabbitMqBroker[] = [];

    const connect = async (options: Partial<RabbitMqBrokerOptions> = {}) => {
      const broker = createRabbitMqBroker(options);
      brokers.push(broker);
      await broker.connect();
      return broker;
    };
    /** A topic whose stream this suite deletes afterwards. */
    const subscribedTopic = () => {
      const topic = uniqueName('t');
      streams.add(streamQueue(topic));
      return topic;
    };
    const recorder = () => {
      const received: Received[] = [];
      return { received, onEvent: (event: GatewayEvent, position: LogPosition | null) => void received.push({ id: event.id, position }) };
    };

    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    });
    afterAll(() => deleteRabbitMqObjects({ streams }));

    it("gives every event its offset in the topic's stream, growing, and names the stream as the log", async () => {
      const broker = await connect();
      const topic = subscribedTopic();
      const { received, onEvent } = recorder();
      const subscription = await broker.subscribe(topic, onEvent);
      expect(subscription.log).toBe(`events.stream.${topic}`);
      // Over AMQP 0-9-1 RabbitMQ does not tell where "now" is in a stream.
      expect(subscription.start).toEqual({});

      const events = Array.from({ length: 5 }, () => makeEvent({ topic }));
      await broker.publish(events);
      await waitFor(() => received.length === 5, 5000, 'five events');
      expect(received.map((r) => r.id)).toEqual(events.map((e) => e.id));
      expect(received.map((r) => r.position)).toEqual([0, 1, 2, 3, 4].map((offset) => ({ partition: '', offset })));
    });

    it('delivers exactly the events after a point, then live ones, on another connection too', async () => {
      const first = await connect();
      const topic = subscribedTopic();
      const before = recorder();
      const subscription = await first.subscribe(topic, before.onEvent);
      const events = Array.from({ length: 10 }, () => makeEvent({ topic }));
      await first.publish(events);
      await waitFor(() => before.received.length === 10, 5000, 'ten events');
      await subscription.close();

      const second = await connect();
      const point = before.received[3]!.position!.offset;
      const after = recorder();
      const resumed = await second.subscribe(topic, after.onEvent, { after: { log: subscription.log!, point: { '': point } } });
      expect(resumed.start).toEqual({ '': point });
      await waitFor(() => after.received.length >= 6, 5000, 'the six events after the point');
      const live = [makeEvent({ topic }), makeEvent({ topic })];
      await first.publish(live);
      await waitFor(() => after.received.length >= 8, 5000, 'the live events');
      await sleep(200);
      expect(after.received.map((r) => r.id)).toEqual([...events.slice(4), ...live].map((e) => e.id));
      // The same events carry the same positions, whoever reads them.
      expect(after.received.slice(0, 6)).toEqual(before.received.slice(4));
    });

    it('resumes at the last event of the stream with nothing to catch up, and refuses a point past its end with BAD_USER_INPUT', async () => {
      const broker = await connect();
      const topic = subscribedTopic();
      const { received, onEvent } = recorder();
      const subscription = await broker.subscribe(topic, onEvent);
      await broker.publish([makeEvent({ topic }), makeEvent({ topic }), makeEvent({ topic })]);
      await waitFor(() => received.length === 3, 5000, 'three events');
      const log = subscription.log!;
      const end = received[2]!.position!.offset;

      const atEnd = recorder();
      await broker.subscribe(topic, atEnd.onEvent, { after: { log, point: { '': end } } });
      const next = makeEvent({ topic });
      await broker.publish([next]);
      await waitFor(() => atEnd.received.length === 1, 5000, 'the next event');
      expect(atEnd.received.map((r) => r.id)).toEqual([next.id]);

      const pastEnd = broker.subscribe(topic, () => undefined, { after: { log, point: { '': end + 1000 } } });
      await expect(pastEnd).rejects.toBeInstanceOf(InvalidCursorError);
      await expect(pastEnd).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      // A stream that was never written to ends before any point.
      const empty = subscribedTopic();
      const inEmpty = broker.subscribe(empty, () => undefined, { after: { log: streamQueue(empty), point: { '': 0 } } });
      await expect(inEmpty).rejects.toBeInstanceOf(InvalidCursorError);
    });

    it('refuses a point in another log with CURSOR_EXPIRED', async () => {
      const broker = await connect();
      const topic = subscribedTopic();
      const other = streamQueue(uniqueName('t'));
      const attempt = broker.subscribe(topic, () => undefined, { after: { log: other, point: { '': 0 } } });
      await expect(attempt).rejects.toBeInstanceOf(CursorExpiredError);
      await expect(attempt).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
    });

    it('refuses with CURSOR_EXPIRED a point whose following events retention dropped, and resumes from one it kept', async () => {
      const topic = subscribedTopic();
      // Tiny segments and a short max-age (the topic's TTL), so retention drops old events quickly.
      const broker = await connect({ topics: { [topic]: { ttlMs: 2000 } }, streamMaxSegmentSizeBytes: 2000 });
      const { received, onEvent } = recorder();
      const subscription = await broker.subscribe(topic, onEvent);
      expect((await listQueues()).find((q) => q.name === streamQueue(topic))?.arguments).toMatchObject({ 'x-max-age': '2s' });
      const padding = 'x'.repeat(800);
      const old = Array.from({ length: 6 }, () => makeEvent({ topic, data: { padding } }));
      for (const event of old) await broker.publish([event]);
      await waitFor(() => received.length === 6, 5000, 'the old events');
      const oldest = received[0]!.position!.offset;

      // Retention runs when a segment fills: events published after max-age push the old ones out.
      await sleep(2500);
      let published = old.length;
      await waitFor(
        async () => {
          await broker.publish([makeEvent({ topic, data: { padding } })]);
          published++;
          return ((await firstKeptOffset(streamQueue(topic))) ?? 0) > oldest + 1;
        },
        20_000,
        'retention to drop the oldest segments',
      );
      await waitFor(() => received.length === published, 5000, 'every event published');

      const expired = broker.subscribe(topic, () => undefined, { after: { log: subscription.log!, point: { '': oldest } } });
      await expect(expired).rejects.toBeInstanceOf(CursorExpiredError);
      await expect(expired).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });

      // A point the stream still keeps resumes as usual.
      const kept = received.at(-2)!;
      const resumed = recorder();
      await broker.subscribe(topic, resumed.onEvent, { after: { log: subscription.log!, point: { '': kept.position!.offset } } });
      await waitFor(() => resumed.received.length >= 1, 5000, 'the event after a kept point');
      expect(resumed.received[0]).toEqual(received.at(-1));
    });
  });
}
