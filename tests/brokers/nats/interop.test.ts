import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBroker } from '../../../src/brokers/nats/nats-broker.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { deadLetterEvent } from '../../../src/store/dead-letter-repository.js';
import { silentLogger } from '../../../src/util/logger.js';
import { gql, startTestApp } from '../../helpers/app.js';
import { requireBroker } from '../../helpers/brokers.js';
import { uniqueName, waitFor } from '../../helpers/events.js';
import { NATS_STREAM, natsOptions, plainClient } from '../../helpers/nats.js';
import { subscribe, wsClient } from '../../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const EVENTS = /* GraphQL */ `
  subscription Events($topic: String!) {
    events(topic: $topic) { id source type topic subject time dataContentType data key correlationId causationId }
  }
`;
const PUBLISH = /* GraphQL */ `
  mutation Publish($input: PublishEventInput!) {
    publishEvent(input: $input) { event { id source type topic subject time dataContentType data key correlationId causationId } }
  }
`;

if (await requireBroker('NATS', '127.0.0.1', 4222)) {
  describe('NATS interop: a real gateway, graphql-ws and plain NATS clients', () => {
    const topic = uniqueName('interop');
    const consumer = uniqueName('interop-consumer');
    const handled: GatewayEvent[] = [];
    let app: App;
    let nc: NatsConnection;
    let jsm: JetStreamManager;

    /** Broker subscriptions that are live (subscribe resolved): only then is no later event missed. */
    let opened = 0;
    const liveSubscription = async () => {
      const before = opened;
      const client = wsClient(app.url);
      const sub = subscribe<{ events: Record<string, unknown> }>(client, EVENTS, { topic });
      await waitFor(() => opened > before, 5000, 'the broker subscription');
      return {
        sub,
        dispose: () => {
          sub.close();
          return client.dispose();
        },
      };
    };

    beforeAll(async () => {
      ({ nc, jsm } = await plainClient());
      const broker = new NatsBroker(natsOptions(), silentLogger);
      const subscribeLive = broker.subscribe.bind(broker);
      broker.subscribe = async (...args) => {
        const subscription = await subscribeLive(...args);
        opened++;
        return subscription;
      };
      app = await startTestApp({
        broker,
        consumers: [{ name: consumer, topic, maxAttempts: 2 }],
        handlers: { [consumer]: (event) => void handled.push(event) },
      });
    });
    afterAll(async () => {
      await app?.dispose();
      for (const name of [consumer, `_replay_${consumer}`]) await jsm?.consumers.delete(NATS_STREAM, name).catch(() => undefined);
      await nc?.close();
    });

    it('delivers a mutation’s event to a graphql-ws subscription and the durable consumer', async () => {
      const { sub, dispose } = await liveSubscription();
      const result = await gql<{ publishEvent: { event: Record<string, unknown> } }>(app.url, PUBLISH, {
        input: { topic, type: 'order.created', key: 'o-1', subject: 'order/1', causationId: 'cmd-1', data: { total: 42 } },
      });
      const published = result.data!.publishEvent.event;
      const [received] = await sub.waitFor(1);
      expect(received!.events).toEqual(published);
      await waitFor(() => handled.some((e) => e.id === published['id']), 5000, 'the consumer');
      await dispose();
    });

    it('hands an event a plain JetStream client published in the documented format to subscriptions and consumers', async () => {
      const { sub, dispose } = await liveSubscription();
      const id = uniqueName('plain');
      // Only the required attributes: topic, time and datacontenttype may be left out.
      const body = {
        specversion: '1.0',
        id,
        source: 'urn:plain-client',
        type: 'invoice.sent',
        data: { invoice: 7 },
        correlationid: 'corr-plain',
      };
      const ack = await jetstream(nc).publish(`events.${topic}.invoice.sent`, JSON.stringify(body), { msgID: id });
      expect(ack.stream).toBe(NATS_STREAM);

      const [received] = await sub.waitFor(1);
      expect(received!.events).toMatchObject({
        id,
        topic,
        type: 'invoice.sent',
        source: 'urn:plain-client',
        data: { invoice: 7 },
        correlationId: 'corr-plain',
        dataContentType: 'application/json',
      });
      const event = await waitFor(() => handled.find((e) => e.id === id), 5000, 'the consumer');
      expect(event).toMatchObject({ topic, type: 'invoice.sent', correlationId: 'corr-plain', key: null });
      await dispose();
    });

    it('dead-letters, with its raw body, a message a plain client published that is not a CloudEvent', async () => {
      const h = headers();
      h.set('Nats-Msg-Id', uniqueName('garbage'));
      await jetstream(nc).publish(`events.${topic}.garbage`, 'not json at all', { headers: h });
      const letters = () => app.services.deadLetters.list({ consumer }, { limit: 5, inverted: false });
      const letter = await waitFor(async () => (await letters())[0], 5000, 'a dead letter');
      expect(letter).toMatchObject({ eventId: h.get('Nats-Msg-Id'), attempts: 1, error: 'message body is not JSON' });
      expect(deadLetterEvent(letter).data).toEqual({ raw: 'not json at all' });
      expect((await jsm.consumers.info(NATS_STREAM, consumer)).num_ack_pending).toBe(0);
    });

    it('publishes what a plain client can read: the structured CloudEvent body, ce- headers and Nats-Msg-Id', async () => {
      const result = await gql<{ publishEvent: { event: { id: string; time: string } } }>(
        app.url,
        PUBLISH,
        {
          input: { topic, type: 'order.paid', key: 'o-2', subject: 'order/2', source: 'shop', causationId: 'cmd-2', data: { paid: true } },
        },
        { 'x-correlation-id': 'req-42' },
      );
      const { id, time } = result.data!.publishEvent.event;
      const subject = `events.${topic}.order.paid`;
      await waitFor(async () => (await app.services.outbox.count('PENDING')) === 0, 5000, 'the relay');
      const stored = await jsm.streams.getMessage(NATS_STREAM, { last_by_subj: subject });
      expect(stored!.subject).toBe(subject);
      expect(stored!.json()).toEqual({
        specversion: '1.0',
        id,
        source: 'shop',
        type: 'order.paid',
        subject: 'order/2',
        time,
        datacontenttype: 'application/json',
        data: { paid: true },
        topic,
        partitionkey: 'o-2',
        correlationid: 'req-42',
        causationid: 'cmd-2',
        // Every event the gateway publishes carries the W3C trace context it was published in.
        traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/),
      });
      const header = (name: string) => stored!.header.get(name);
      expect({
        msgId: header('Nats-Msg-Id'),
        contentType: header('content-type'),
        id: header('ce-id'),
        type: header('ce-type'),
        source: header('ce-source'),
        specversion: header('ce-specversion'),
        time: header('ce-time'),
        topic: header('ce-topic'),
        subject: header('ce-subject'),
        key: header('ce-partitionkey'),
        correlation: header('ce-correlationid'),
        correlationHeader: header('x-correlation-id'),
        causation: header('ce-causationid'),
      }).toEqual({
        msgId: id,
        contentType: 'application/cloudevents+json',
        id,
        type: 'order.paid',
        source: 'shop',
        specversion: '1.0',
        time,
        topic,
        subject: 'order/2',
        key: 'o-2',
        correlation: 'req-42',
        correlationHeader: 'req-42',
        causation: 'cmd-2',
      });
    });
  });
}
