import type { ConsumeMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../../../src/events/event.js';
import { gql, startTestApp } from '../../helpers/app.js';
import { requireBroker } from '../../helpers/brokers.js';
import { uniqueName, waitFor } from '../../helpers/events.js';
import { createRabbitMqBroker, deleteRabbitMqObjects, plainClient, queueState, streamQueue, waitForStreamConsumer } from '../../helpers/rabbitmq.js';
import { subscribe, wsClient } from '../../helpers/subscriptions.js';

type TestApp = Awaited<ReturnType<typeof startTestApp>>;

const PUBLISH = /* GraphQL */ `
  mutation Publish($input: PublishEventInput!) {
    publishEvent(input: $input) { event { id time } }
  }
`;
const EVENTS = /* GraphQL */ `
  subscription Events($topic: String!) {
    events(topic: $topic) { id source type topic subject time data key correlationId causationId }
  }
`;

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  describe('RabbitMQ interop: GraphQL, the gateway and plain AMQP clients', () => {
    const consumers = new Set<string>();
    const streams = new Set<string>();
    const apps: TestApp[] = [];
    const cleanups: (() => unknown)[] = [];

    const gateway = async (options: Parameters<typeof startTestApp>[0] = {}) => {
      const app = await startTestApp({ ...options, broker: createRabbitMqBroker() });
      apps.push(app);
      return app;
    };
    /** A GraphQL subscription over graphql-ws, live on the broker side once this resolves. */
    const subscribeOverWebSocket = async (app: TestApp, topic: string) => {
      const client = wsClient(app.url);
      const sub = subscribe<{ events: Record<string, unknown> }>(client, EVENTS, { topic });
      cleanups.push(
        () => sub.close(),
        () => client.dispose(),
      );
      streams.add(streamQueue(topic));
      await waitForStreamConsumer(topic);
      return sub;
    };
    const client = async () => {
      const c = await plainClient();
      cleanups.push(() => c.close());
      return c;
    };

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0)) await cleanup();
      await Promise.all(apps.splice(0).map((app) => app.dispose()));
    });
    afterAll(() => deleteRabbitMqObjects({ consumers, streams }));

    it('delivers a mutation’s event to a graphql-ws subscription through RabbitMQ', async () => {
      const app = await gateway();
      const topic = uniqueName('orders');
      const sub = await subscribeOverWebSocket(app, topic);
      const result = await gql<{ publishEvent: { event: { id: string; time: string } } }>(app.url, PUBLISH, {
        input: { topic, type: 'order.created', key: 'order-7', subject: 'order/7', correlationId: 'req-7', causationId: 'cmd-7', data: { orderId: 7 } },
      });
      const { id, time } = result.data!.publishEvent.event;
      const [received] = await sub.waitFor(1);
      expect(received!.events).toEqual({
        id,
        source: 'event-gateway',
        type: 'order.created',
        topic,
        subject: 'order/7',
        time,
        data: { orderId: 7 },
        key: 'order-7',
        correlationId: 'req-7',
        causationId: 'cmd-7',
      });
    });

    it('hands an event a plain amqplib client publishes to a GraphQL subscription and a durable consumer', async () => {
      const topic = uniqueName('orders');
      const name = uniqueName('interop');
      consumers.add(name);
      const handled: GatewayEvent[] = [];
      const app = await gateway({ consumers: [{ name, topic }], handlers: { [name]: (event) => void handled.push(event) } });
      const sub = await subscribeOverWebSocket(app, topic);

      // The documented format: a structured CloudEvent; `topic` may be left out (the routing key says it).
      const id = randomUUID();
      const cloudEvent = {
        specversion: '1.0',
        id,
        source: 'urn:billing-service',
        type: 'invoice.sent',
        time: '2026-01-02T03:04:05.000Z',
        datacontenttype: 'application/json',
        data: { invoice: 42 },
        correlationid: 'corr-plain',
      };
      const { channel } = await client();
      channel.publish('events', `${topic}.invoice.sent`, Buffer.from(JSON.stringify(cloudEvent)), {
        contentType: 'application/cloudevents+json',
        persistent: true,
        messageId: id,
      });

      const [received] = await sub.waitFor(1);
      expect(received!.events).toMatchObject({
        id,
        source: 'urn:billing-service',
        type: 'invoice.sent',
        topic,
        data: { invoice: 42 },
        correlationId: 'corr-plain',
      });
      await waitFor(() => app.services.processed.has(name, id), 5000, 'durable consumer handled it');
      expect(handled).toEqual([
        {
          id,
          source: 'urn:billing-service',
          type: 'invoice.sent',
          topic,
          subject: null,
          time: new Date(cloudEvent.time),
          dataContentType: 'application/json',
          data: { invoice: 42 },
          key: null,
          correlationId: 'corr-plain',
          causationId: null,
          dataSchema: null,
          traceparent: null,
          tracestate: null,
          extensions: null,
        },
      ]);
    });

    it('dead-letters a message from a plain client that is not a CloudEvent, keeping its raw body in the store and in <consumer>.dlq', async () => {
      const topic = uniqueName('orders');
      const name = uniqueName('poison');
      consumers.add(name);
      const app = await gateway({
        consumers: [{ name, topic }],
        handlers: {
          [name]: () => {
            throw new Error('the handler must not see a message it cannot read');
          },
        },
      });
      const { channel, connection } = await client();
      channel.publish('events', `${topic}.order.created`, Buffer.from('not json at all'), { messageId: 'poison-1', persistent: true });

      const letter = await waitFor(
        async () => (await app.services.deadLetters.list({ consumer: name }, { limit: 5, inverted: false }))[0],
        5000,
        'dead letter',
      );
      expect(letter).toMatchObject({ consumer: name, eventId: 'poison-1', attempts: 1, error: 'message body is not JSON' });
      await waitFor(async () => (await queueState(connection, `${name}.dlq`))?.messageCount === 1, 5000, 'message in the dlq');
      const raw = await channel.get(`${name}.dlq`, { noAck: true });
      if (raw === false) throw new Error('no message in the dlq');
      expect(raw.content.toString()).toBe('not json at all');
      expect(raw.properties.headers).toMatchObject({ 'x-gateway-error': 'message body is not JSON', 'x-gateway-consumer': name });
    });

    it('lets a plain amqplib client read a gateway event from its own queue, with the documented body, properties and headers', async () => {
      const topic = uniqueName('orders');
      const { channel } = await client();
      const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
      await channel.bindQueue(queue, 'events', `${topic}.#`);
      const messages: ConsumeMessage[] = [];
      await channel.consume(queue, (message) => message && messages.push(message), { noAck: true });

      const app = await gateway();
      const result = await gql<{ publishEvent: { event: { id: string; time: string } } }>(app.url, PUBLISH, {
        input: { topic, type: 'order.created', key: 'order-9', subject: 'order/9', correlationId: 'req-9', causationId: 'cmd-9', data: { orderId: 9 } },
      });
      const { id, time } = result.data!.publishEvent.event;
      await waitFor(() => messages.length === 1, 5000, 'the message');
      const [message] = messages;

      expect(message!.fields).toMatchObject({ exchange: 'events', routingKey: `${topic}.order.created` });
      expect(JSON.parse(message!.content.toString())).toEqual({
        specversion: '1.0',
        id,
        source: 'event-gateway',
        type: 'order.created',
        subject: 'order/9',
        time,
        datacontenttype: 'application/json',
        data: { orderId: 9 },
        topic,
        partitionkey: 'order-9',
        correlationid: 'req-9',
        causationid: 'cmd-9',
        // Every event the gateway publishes carries the W3C trace context it was published in.
        traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/),
      });
      expect(message!.properties).toMatchObject({
        contentType: 'application/cloudevents+json',
        deliveryMode: 2,
        messageId: id,
        correlationId: 'req-9',
        type: 'order.created',
        timestamp: Math.floor(Date.parse(time) / 1000),
      });
      expect(message!.properties.headers).toEqual({
        'cloudEvents:specversion': '1.0',
        'cloudEvents:id': id,
        'cloudEvents:source': 'event-gateway',
        'cloudEvents:type': 'order.created',
        'cloudEvents:time': time,
        'cloudEvents:topic': topic,
        'cloudEvents:subject': 'order/9',
        'cloudEvents:partitionkey': 'order-9',
        'cloudEvents:correlationid': 'req-9',
        'cloudEvents:causationid': 'cmd-9',
        'x-correlation-id': 'req-9',
        // W3C Trace Context for AMQP: the same traceparent as in the body, for tracing agents.
        traceparent: JSON.parse(message!.content.toString()).traceparent,
      });
    });
  });
}
