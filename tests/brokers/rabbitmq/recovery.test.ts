import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { BrokerConnectionStatus } from '../../../src/brokers/broker.js';
import type { RabbitMqBroker, RabbitMqBrokerOptions } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { BrokerAuthenticationError, BrokerUnavailableError, PublishError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { sleep } from '../../../src/util/backoff.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { type TestBinding, consumeWith } from '../../helpers/consume.js';
import {
  closeConnectionNamed,
  createRabbitMqBroker,
  deleteRabbitMqObjects,
  listBindings,
  plainClient,
  queueState,
  streamQueue,
} from '../../helpers/rabbitmq.js';

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  describe('RabbitMQ: recovery and shutdown', () => {
    const consumers = new Set<string>();
    const streams = new Set<string>();
    const brokers: RabbitMqBroker[] = [];

    const create = (options: Partial<RabbitMqBrokerOptions> = {}) => {
      const broker = createRabbitMqBroker(options);
      brokers.push(broker);
      return broker;
    };
    const connect = async (options: Partial<RabbitMqBrokerOptions> = {}) => {
      const broker = create(options);
      await broker.connect();
      return broker;
    };
    const binding = (prefetch = 5): TestBinding => {
      const name = uniqueName('rec');
      consumers.add(name);
      return { name, topic: uniqueName('t'), prefetch };
    };
    /** A consumer that records the ids it handles. */
    const recording = async (broker: RabbitMqBroker, b: TestBinding) => {
      const handled: string[] = [];
      await consumeWith(broker, b, async ({ event }) => {
        handled.push(event.id);
        return { kind: 'ack' };
      });
      return handled;
    };

    afterEach(async () => {
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    });
    afterAll(() => deleteRabbitMqObjects({ consumers, streams }));
    /** A topic whose stream this suite deletes afterwards. */
    const subscribedTopic = () => {
      const topic = uniqueName('t');
      streams.add(streamQueue(topic));
      return topic;
    };

    it('declares and consumes again when the broker cancels a consumer because its queue was deleted', async () => {
      const broker = await connect();
      const b = binding();
      const handled = await recording(broker, b);
      const client = await plainClient();
      try {
        await client.channel.deleteQueue(b.name);
        await waitFor(async () => (await queueState(client.connection, b.name))?.consumerCount === 1, 5000, 'queue declared and consumed again');
      } finally {
        await client.close();
      }
      const event = makeEvent({ topic: b.topic });
      await broker.publish([event]);
      await waitFor(() => handled.includes(event.id), 5000, 'delivery after the cancel');
    });

    it('declares the stream again when someone deletes it, and reads the new one from its beginning', async () => {
      const broker = await connect();
      const topic = subscribedTopic();
      const received: { event: GatewayEvent; offset: number | undefined }[] = [];
      await broker.subscribe(topic, (event, position) => received.push({ event, offset: position?.offset }));
      await broker.publish([makeEvent({ topic }), makeEvent({ topic }), makeEvent({ topic })]);
      await waitFor(() => received.length === 3, 5000, 'the events before the deletion');
      const client = await plainClient();
      try {
        await client.channel.deleteQueue(streamQueue(topic));
      } finally {
        await client.close();
      }
      const bound = async () => (await listBindings()).some((r) => r.destination_name === streamQueue(topic) && r.routing_key === `${topic}.#`);
      await waitFor(bound, 10_000, 'the stream declared and bound again');
      const event = makeEvent({ topic });
      await broker.publish([event]);
      await waitFor(() => received.length === 4, 5000, 'delivery from the new stream');
      // The new stream starts over at offset 0: going on after the old stream's offset 2 would skip it.
      expect(received[3]).toEqual({ event, offset: 0 });
    });

    it('resumes a subscription after the last event it delivered when its connection drops, while publishing goes on', async () => {
      const connectionName = uniqueName('conn');
      const broker = await connect({ connectionName, reconnect: { initialMs: 4000, maxMs: 4000, multiplier: 1, jitter: 0 } });
      const topic = subscribedTopic();
      const received: { id: string; offset: number | undefined }[] = [];
      await broker.subscribe(topic, (event, position) => received.push({ id: event.id, offset: position?.offset }));
      const first = makeEvent({ topic });
      await broker.publish([first]);
      await waitFor(() => received.length === 1, 5000, 'the first event');

      await closeConnectionNamed(`${connectionName} (subscriptions)`);
      // Subscriptions have a connection of their own: the publisher goes on while they reconnect.
      const meanwhile = Array.from({ length: 5 }, () => makeEvent({ topic }));
      await broker.publish(meanwhile);
      expect(broker.status()).toEqual({ connected: true, lastError: null });
      await sleep(300);
      expect(received).toHaveLength(1);

      await waitFor(() => received.length >= 6, 15_000, 'the events published while the subscription was away');
      await sleep(300);
      expect(received.map((r) => r.id)).toEqual([first, ...meanwhile].map((e) => e.id));
      const offsets = received.map((r) => r.offset!);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      expect(new Set(offsets).size).toBe(6);
    });

    it('reconnects after the broker drops the connection, reports the outage, and resumes consumers and subscriptions', async () => {
      const connectionName = uniqueName('conn');
      const broker = await connect({ connectionName, reconnect: { initialMs: 1000, maxMs: 1000, multiplier: 1, jitter: 0 } });
      const b = binding();
      streams.add(streamQueue(b.topic));
      const handled = await recording(broker, b);
      const received: GatewayEvent[] = [];
      await broker.subscribe(b.topic, (event) => received.push(event));
      expect(broker.status()).toEqual({ connected: true, lastError: null });

      // Sample status() from before the drop, so seeing the one-second outage does not depend on
      // how long rabbitmqctl takes to return.
      let outage: BrokerConnectionStatus | undefined;
      const sampler = setInterval(() => {
        const status = broker.status();
        if (!status.connected) outage ??= status;
      }, 5);
      try {
        await closeConnectionNamed(connectionName);
        await waitFor(() => outage, 5000, 'the outage to show');
        await waitFor(() => broker.status().connected, 10_000, 'reconnected');
      } finally {
        clearInterval(sampler);
      }
      expect(outage?.lastError).toMatch(/CONNECTION_FORCED/);
      expect(broker.status().lastError).toBeNull();

      const after = makeEvent({ topic: b.topic });
      await broker.publish([after]);
      await waitFor(() => handled.includes(after.id) && received.some((e) => e.id === after.id), 5000, 'deliveries after reconnecting');
    });

    it('rejects connect() with a BrokerAuthenticationError naming RABBITMQ_URL when RabbitMQ refuses the login, without showing the password', async () => {
      const broker = create({ url: 'amqp://guest:not-the-password@127.0.0.1:5672' });
      const connecting = broker.connect();
      await expect(connecting).rejects.toBeInstanceOf(BrokerAuthenticationError);
      await expect(connecting).rejects.toThrow(
        /^RABBITMQ_URL: RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672 refused the login of user "guest": .*ACCESS_REFUSED/,
      );
      await expect(connecting).rejects.not.toThrow(/not-the-password/);
      expect(broker.status().connected).toBe(false);
    });

    it('keeps retrying an unreachable broker in the background, reporting why, and fails publishes at once', async () => {
      const broker = create({ url: 'amqp://guest:guest@127.0.0.1:1' });
      const connecting = broker.connect();
      const outcome = connecting.then(
        () => 'connected',
        (error: unknown) => error,
      );
      await waitFor(() => broker.status().lastError?.includes('ECONNREFUSED'), 5000, 'a failed attempt');
      expect(broker.status().connected).toBe(false);

      const events = [makeEvent(), makeEvent()];
      const error = await broker.publish(events).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishError);
      expect([...(error as PublishError).failures.keys()]).toEqual(events.map((e) => e.id));

      await broker.close();
      expect(await outcome).toBeInstanceOf(BrokerUnavailableError);
    });

    it('close() waits for a handler in flight and acknowledges its message', async () => {
      const broker = await connect();
      const b = binding(1);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered = false;
      await consumeWith(broker, b, async () => {
        entered = true;
        await gate;
        return { kind: 'ack' };
      });
      await broker.publish([makeEvent({ topic: b.topic })]);
      await waitFor(() => entered, 5000, 'handler running');

      let closed = false;
      const closing = broker.close().then(() => (closed = true));
      await sleep(300);
      expect(closed).toBe(false);
      release();
      await closing;

      const client = await plainClient();
      try {
        expect(await queueState(client.connection, b.name)).toEqual({ messageCount: 0, consumerCount: 0 });
      } finally {
        await client.close();
      }
    });
  });
}
