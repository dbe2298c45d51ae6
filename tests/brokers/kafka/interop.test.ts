import kafkajs from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../../../src/events/event.js';
import { gql, startTestApp } from '../../helpers/app.js';
import { requireBroker } from '../../helpers/brokers.js';
import { uniqueName, waitFor } from '../../helpers/events.js';
import {
  deleteTopicsCreatedByThisFile,
  headerText,
  KAFKA_HOST,
  KAFKA_PORT,
  kafkaOptions,
  kafkaTestLogger,
  ObservedKafkaBroker,
  plainKafka,
  readTopic,
} from '../../helpers/kafka.js';
import { subscribe, wsClient } from '../../helpers/subscriptions.js';

const { Partitioners } = kafkajs;

type App = Awaited<ReturnType<typeof startTestApp>>;

const PUBLISH = /* GraphQL */ `
  mutation Publish($input: PublishEventInput!) {
    publishEvent(input: $input) {
      event { id source type topic subject time dataContentType data key correlationId causationId }
    }
  }
`;
const EVENTS = /* GraphQL */ `
  subscription Events($topic: String!) {
    events(topic: $topic) { id source type topic subject time dataContentType data key correlationId causationId }
  }
`;

if (await requireBroker('Kafka', KAFKA_HOST, KAFKA_PORT)) {
  deleteTopicsCreatedByThisFile();
  describe('Kafka interop: a real gateway, graphql-ws and plain kafkajs clients', () => {
    const apps: App[] = [];
    const start = async (options: Parameters<typeof startTestApp>[0] = {}) => {
      const broker = new ObservedKafkaBroker(kafkaOptions(), kafkaTestLogger);
      const app = await startTestApp({ ...options, broker });
      apps.push(app);
      return { app, broker };
    };
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.dispose()));
    });

    it('delivers a mutation’s event to a GraphQL subscription over WebSocket', async () => {
      const { app, broker } = await start();
      const topic = uniqueName('orders');
      const client = wsClient(app.url);
      const sub = subscribe<{ events: Record<string, unknown> }>(client, EVENTS, { topic });
      await waitFor(() => broker.liveTopics.has(topic), 30_000, 'kafka subscription');
      const result = await gql<{ publishEvent: { event: Record<string, unknown> } }>(
        app.url,
        PUBLISH,
        { input: { topic, type: 'order.created', key: 'o-1', subject: 'order/1', source: 'shop', causationId: 'cmd-1', data: { total: 42 } } },
        { 'x-correlation-id': 'req-1' },
      );
      const [received] = await sub.waitFor(1, 15_000);
      expect(received!.events).toEqual(result.data!.publishEvent.event);
      expect(received!.events).toMatchObject({ topic, key: 'o-1', correlationId: 'req-1', causationId: 'cmd-1' });
      sub.close();
      await client.dispose();
    });

    it('takes a CloudEvent produced by a plain kafkajs producer to subscriptions and durable consumers', async () => {
      const topic = uniqueName('external');
      const name = uniqueName('billing');
      const handled: GatewayEvent[] = [];
      const { app, broker } = await start({ consumers: [{ name, topic }], handlers: { [name]: (event) => void handled.push(event) } });
      const client = wsClient(app.url);
      const sub = subscribe<{ events: Record<string, unknown> }>(client, EVENTS, { topic });
      await waitFor(() => broker.liveTopics.has(topic), 30_000, 'kafka subscription');

      const producer = plainKafka().producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      // The documented format; `topic`, `time` and `datacontenttype` may be left out.
      const cloudEvent = {
        specversion: '1.0',
        id: uniqueName('ext'),
        source: 'urn:legacy-shop',
        type: 'order.shipped',
        subject: 'order/7',
        partitionkey: 'order-7',
        correlationid: 'corr-7',
        data: { carrier: 'DHL' },
      };
      await producer.send({ topic, messages: [{ key: 'order-7', value: JSON.stringify(cloudEvent) }] });
      await producer.disconnect();

      const [live] = await sub.waitFor(1, 15_000);
      expect(live!.events).toMatchObject({
        id: cloudEvent.id,
        source: 'urn:legacy-shop',
        type: 'order.shipped',
        topic,
        key: 'order-7',
        correlationId: 'corr-7',
        data: { carrier: 'DHL' },
      });
      await waitFor(() => app.services.processed.has(name, cloudEvent.id), 15_000, 'durable consumer');
      expect(handled).toHaveLength(1);
      expect(handled[0]).toMatchObject({ id: cloudEvent.id, topic, subject: 'order/7', key: 'order-7', dataContentType: 'application/json' });
      sub.close();
      await client.dispose();
    });

    it('writes what the gateway publishes in the documented format for plain kafkajs consumers', async () => {
      const { app } = await start();
      const topic = uniqueName('outbound');
      const result = await gql<{ publishEvent: { event: { id: string; time: string } } }>(
        app.url,
        PUBLISH,
        { input: { topic, type: 'invoice.issued', key: 'inv-1', subject: 'invoice/1', source: 'billing', causationId: 'cmd-9', data: { amount: 12.5 } } },
        { 'x-correlation-id': 'req-9' },
      );
      const { id, time } = result.data!.publishEvent.event;
      await waitFor(async () => (await app.services.outbox.count('PUBLISHED')) === 1, 15_000, 'relay confirmed');

      const [record] = await readTopic(topic, 1);
      expect(record!.key?.toString()).toBe('inv-1');
      expect(JSON.parse(record!.value!.toString())).toEqual({
        specversion: '1.0',
        id,
        source: 'billing',
        type: 'invoice.issued',
        subject: 'invoice/1',
        time,
        datacontenttype: 'application/json',
        data: { amount: 12.5 },
        topic,
        partitionkey: 'inv-1',
        correlationid: 'req-9',
        causationid: 'cmd-9',
        // Every event the gateway publishes carries the W3C trace context it was published in.
        traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/),
      });
      expect(headerText(record!, 'content-type')).toBe('application/cloudevents+json');
      expect(headerText(record!, 'ce_id')).toBe(id);
      expect(headerText(record!, 'ce_type')).toBe('invoice.issued');
      expect(headerText(record!, 'ce_correlationid')).toBe('req-9');
      expect(headerText(record!, 'x-correlation-id')).toBe('req-9');
    });
  });
}
