import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RabbitMqBroker } from '../../../src/brokers/rabbitmq/rabbitmq-broker.js';
import { PublishError, UnroutableEventError } from '../../../src/errors.js';
import type { GatewayEvent } from '../../../src/events/event.js';
import { gql, startTestApp } from '../../helpers/app.js';
import { requireBroker } from '../../helpers/brokers.js';
import { makeEvent, uniqueName, waitFor } from '../../helpers/events.js';
import { createRabbitMqBroker, deleteRabbitMqObjects, streamQueue } from '../../helpers/rabbitmq.js';
import { consumeWith } from '../../helpers/consume.js';

type TestApp = Awaited<ReturnType<typeof startTestApp>>;

if (await requireBroker('RabbitMQ', '127.0.0.1', 5672)) {
  describe('RabbitMQ: events no queue takes', () => {
    const consumers = new Set<string>();
    const streams = new Set<string>();
    const brokers: RabbitMqBroker[] = [];
    const apps: TestApp[] = [];

    const connect = async () => {
      const broker = createRabbitMqBroker();
      brokers.push(broker);
      await broker.connect();
      return broker;
    };

    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.dispose()));
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    });
    afterAll(() => deleteRabbitMqObjects({ consumers, streams }));

    it('rejects with a PublishError listing exactly the unroutable events, and confirms the others', async () => {
      const broker = await connect();
      const routed = uniqueName('t');
      streams.add(streamQueue(routed));
      const received: GatewayEvent[] = [];
      await broker.subscribe(routed, (event) => received.push(event));
      const [a1, lost, a2] = [makeEvent({ topic: routed }), makeEvent({ topic: uniqueName('nobody') }), makeEvent({ topic: routed })];

      const error = await broker.publish([a1!, lost!, a2!]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PublishError);
      const failures = (error as PublishError).failures;
      expect([...failures.keys()]).toEqual([lost!.id]);
      expect(failures.get(lost!.id)).toBeInstanceOf(UnroutableEventError);
      expect(failures.get(lost!.id)?.message).toMatch(new RegExp(`unroutable: no queue is bound to routing key "${lost!.topic}\\.thing\\.happened"`));
      await waitFor(() => received.length === 2, 5000, 'the routable events');
      expect(received.map((e) => e.id)).toEqual([a1!.id, a2!.id]);
    });

    it('keeps a topic routable once it has had a subscriber: its stream takes the events while nobody subscribes', async () => {
      const broker = await connect();
      const topic = uniqueName('t');
      streams.add(streamQueue(topic));
      const subscription = await broker.subscribe(topic, () => undefined);
      await subscription.close();

      const event = makeEvent({ topic });
      await broker.publish([event]);
      // The stream kept it: a subscriber resuming from the stream's beginning receives it.
      const received: GatewayEvent[] = [];
      const resumed = await broker.subscribe(topic, (e) => received.push(e), { after: { log: subscription.log!, point: {} } });
      await waitFor(() => received.length === 1, 5000, 'the event kept while nobody subscribed');
      expect(received).toEqual([event]);
      await resumed.close();
    });

    it('keeps an unroutable outbox row PENDING with its attempts and error, and publishes it once a queue takes it', async () => {
      const app = await startTestApp({ broker: createRabbitMqBroker() });
      apps.push(app);
      const topic = uniqueName('t');
      const published = await gql<{ publishEvent: { outboxId: string; event: { id: string } } }>(
        app.url,
        `mutation($input: PublishEventInput!) { publishEvent(input: $input) { outboxId event { id } } }`,
        { input: { topic, type: 'order.created', data: { n: 1 } } },
      );
      const eventId = published.data!.publishEvent.event.id;
      const row = await waitFor(
        async () => {
          const r = await app.services.outbox.getByEventId(eventId);
          return r && r.attempts >= 2 ? r : undefined;
        },
        10_000,
        'failed publish attempts',
      );
      expect(row.status).toBe('PENDING');
      expect(row.lastError).toMatch(/unroutable: no queue is bound to routing key ".*\.order\.created"/);

      // Once a durable consumer exists, its queue takes the event: the relay's next attempt succeeds.
      const name = uniqueName('late');
      consumers.add(name);
      const broker = await connect();
      const handled: string[] = [];
      await consumeWith(broker, { name, topic, prefetch: 1 }, async ({ event }) => {
        handled.push(event.id);
        return { kind: 'ack' };
      });
      await waitFor(async () => (await app.services.outbox.getByEventId(eventId))?.status === 'PUBLISHED', 10_000, 'row published');
      await waitFor(() => handled.includes(eventId), 5000, 'event consumed');
    });
  });
}
