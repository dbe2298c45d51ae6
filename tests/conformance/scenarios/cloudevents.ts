import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { randomSpanId, randomTraceId } from '../../../src/tracing/trace-context.js';
import { gql } from '../../helpers/app.js';
import { uniqueName, waitFor } from '../../helpers/events.js';
import { WebhookRecorder } from '../../helpers/webhook-recorder.js';
import { watchSubscriptions } from '../live-topics.js';
import type { Scenario } from '../scenario.js';
import { EVENT_FIELDS, subscribeToEvents, webhookConsumer, type EventView } from './graphql-client.js';

const DATA_SCHEMA = 'https://schemas.example.com/inventory/item-created.json';
/** Extension attributes of each CloudEvents type a structured JSON event can carry: String, Integer, Boolean. */
const EXTENSIONS = { tenant: 'acme', priority: 3, flag: true };

interface DeadLetterView {
  readonly id: string;
  readonly status: string;
  readonly error: string;
  readonly event: EventView;
}

/** What a foreign producer's event must keep on its way through the gateway. */
export const cloudEventsScenarios: readonly Scenario[] = [
  {
    name: 'keeps the extension attributes and dataschema of a foreign producer’s event for subscribers, webhooks, dead letters and replays',
    uses: ['publishForeign'],
    async run(target, context) {
      const { T } = context;
      const topic = uniqueName('conf');
      const accepting = uniqueName('ce-ok');
      const refusing = uniqueName('ce-refusing');
      const receiver = await WebhookRecorder.start({ keepRequests: true });
      const refuser = await WebhookRecorder.start({ keepRequests: true });
      context.defer(() => receiver.close());
      context.defer(() => refuser.close());
      // A 400 dead-letters at once; once replayed, the receiver takes it.
      refuser.answer = (_id, call) => (call === 1 ? { status: 400 } : {});
      const watched = watchSubscriptions(target.create());
      const app = await context.gateway({
        broker: watched.broker,
        consumers: [webhookConsumer(accepting, topic, receiver.url), webhookConsumer(refusing, topic, refuser.url)],
      });
      const subscriber = subscribeToEvents(app, topic, context);
      await watched.live(topic, T);

      const id = `foreign-${randomUUID()}`;
      // Only in the message's native headers, as an OpenTelemetry instrumentation of the producer's client puts it.
      const traceparent = `00-${randomTraceId()}-${randomSpanId()}-01`;
      const sent = {
        specversion: '1.0',
        id,
        source: 'urn:another-application',
        type: 'item.created',
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        dataschema: DATA_SCHEMA,
        data: { sku: 'A-1', count: 2 },
        ...EXTENSIONS,
      };
      await target.publishForeign!({ topic, type: sent.type, body: JSON.stringify(sent), headers: { traceparent }, key: 'A-1' });
      const expected = { id, topic, type: sent.type, dataSchema: DATA_SCHEMA, extensions: EXTENSIONS, trace: expect.objectContaining({ traceparent }) };
      const onTheWire = { id, source: sent.source, type: sent.type, topic, dataschema: DATA_SCHEMA, data: sent.data, traceparent, ...EXTENSIONS };

      // A GraphQL subscriber.
      await subscriber.waitFor(1, T);
      expect(subscriber.received[0]!.events).toEqual(expected);

      // A webhook: the structured CloudEvent, every attribute with its JSON type, and the trace as a header.
      await receiver.waitForAll([id], T);
      const delivered = receiver.requests.find((request) => request.eventId === id)!;
      expect(JSON.parse(delivered.body)).toMatchObject(onTheWire);
      expect(delivered.headers['traceparent']).toBe(traceparent);

      // A dead letter, as the API shows it.
      const letter = await waitFor(
        async () => {
          const result = await gql<{ deadLetters: { edges: { node: DeadLetterView }[] } }>(
            app.url,
            `query($consumer: String!) { deadLetters(consumer: $consumer, first: 5) { edges { node { id status error event { ${EVENT_FIELDS} } } } } }`,
            { consumer: refusing },
          );
          return result.data?.deadLetters.edges[0]?.node;
        },
        T,
        'the dead letter',
      );
      expect(letter).toMatchObject({ status: 'DEAD', error: expect.stringContaining('400'), event: expected });
      expect(JSON.parse(refuser.requests[0]!.body)).toMatchObject(onTheWire);

      // Its replay carries them again.
      const replayed = await gql<{ replayDeadLetter: { status: string } }>(app.url, `mutation($id: ID!) { replayDeadLetter(id: $id) { status } }`, {
        id: letter.id,
      });
      expect(replayed.errors).toBeUndefined();
      await refuser.waitForAll([id], T, 'the replayed event at the webhook');
      const again = refuser.requests.filter((request) => request.eventId === id);
      expect(again).toHaveLength(2);
      expect(JSON.parse(again[1]!.body)).toMatchObject(onTheWire);
      expect(again[1]!.headers['traceparent']).toBe(traceparent);
      expect(receiver.accepted.get(id)).toBe(1);
    },
  },
];
