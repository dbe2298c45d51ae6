import { afterEach, describe, expect, it } from 'vitest';
import { undecodableEvent } from '../../src/events/codec.js';
import type { GatewayEvent } from '../../src/events/event.js';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';

/**
 * The whole path on the embedded default: mutation → outbox → relay → memory broker → durable
 * consumer → retries → dead letter → replay, observed through the GraphQL API.
 */
describe('mutation to dead letter and back', () => {
  let dispose: (() => Promise<void>) | undefined;
  afterEach(async () => dispose?.());

  it('retries with backoff, dead-letters after maxAttempts, and replays to that consumer only', async () => {
    const topic = uniqueName('orders');
    const attempts: { consumer: string; id: string; attempt: number; at: number }[] = [];
    let billingFixed = false;
    const app = await startTestApp({
      consumers: [
        { name: 'billing', topic, maxAttempts: 3, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 } },
        { name: 'audit', topic },
      ],
      handlers: {
        billing: (event: GatewayEvent, ctx) => {
          attempts.push({ consumer: 'billing', id: event.id, attempt: ctx.attempt, at: Date.now() });
          if (!billingFixed) throw new Error('billing service answered 503');
        },
        audit: (event: GatewayEvent, ctx) => void attempts.push({ consumer: 'audit', id: event.id, attempt: ctx.attempt, at: Date.now() }),
      },
    });
    dispose = app.dispose;

    const published = await gql<{ publishEvent: { outboxId: string; event: { id: string } } }>(
      app.url,
      `mutation($input: PublishEventInput!) { publishEvent(input: $input) { outboxId event { id } } }`,
      { input: { topic, type: 'order.created', key: 'order-7', data: { orderId: 7 } } },
    );
    const eventId = published.data!.publishEvent.event.id;

    // The relay published it and the outbox says so.
    await waitFor(
      async () => {
        const r = await gql<{ outboxEntry: { status: string } }>(app.url, `query($id: ID!) { outboxEntry(id: $id) { status } }`, {
          id: published.data!.publishEvent.outboxId,
        });
        return r.data?.outboxEntry.status === 'PUBLISHED';
      },
      5000,
      'outbox row published',
    );

    // billing fails 3 times with growing delays, then the dead letter appears.
    const letters = await waitFor(
      async () => {
        const r = await gql<{ deadLetters: { edges: { node: Record<string, unknown> & { event: { id: string } } }[] } }>(
          app.url,
          `{ deadLetters(consumer: "billing") { edges { node { id consumer topic error attempts status event { id key data } } } } }`,
        );
        return r.data?.deadLetters.edges.length ? r.data.deadLetters.edges : undefined;
      },
      10_000,
      'dead letter',
    );
    expect(letters[0]!.node).toMatchObject({
      consumer: 'billing',
      topic,
      error: 'billing service answered 503',
      attempts: 3,
      status: 'DEAD',
      event: { id: eventId, key: 'order-7', data: { orderId: 7 } },
    });
    const billingTries = attempts.filter((a) => a.consumer === 'billing');
    expect(billingTries.map((a) => a.attempt)).toEqual([1, 2, 3]);
    const gaps = [billingTries[1]!.at - billingTries[0]!.at, billingTries[2]!.at - billingTries[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[1]).toBeGreaterThanOrEqual(190);
    expect(attempts.filter((a) => a.consumer === 'audit')).toHaveLength(1);

    const consumers = await gql<{ consumers: { name: string; processed: number; deadLettered: number; retrying: number }[] }>(
      app.url,
      `{ consumers { name processed deadLettered retrying lag } }`,
    );
    expect(consumers.data!.consumers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'billing', processed: 0, deadLettered: 1, retrying: 0 }),
        expect.objectContaining({ name: 'audit', processed: 1, deadLettered: 0 }),
      ]),
    );

    // Fix billing, replay: only billing runs again.
    billingFixed = true;
    const replay = await gql<{ replayDeadLetter: { status: string } }>(app.url, `mutation($id: ID!) { replayDeadLetter(id: $id) { status } }`, {
      id: letters[0]!.node['id'],
    });
    expect(replay.data?.replayDeadLetter.status).toBe('REPLAYED');
    await waitFor(
      async () => {
        const r = await gql<{ processedMessage: { eventId: string } | null }>(
          app.url,
          `query($id: ID!) { processedMessage(consumer: "billing", eventId: $id) { eventId processedAt } }`,
          { id: eventId },
        );
        return r.data?.processedMessage;
      },
      5000,
      'billing processed the replay',
    );
    expect(attempts.filter((a) => a.consumer === 'billing').map((a) => a.attempt)).toEqual([1, 2, 3, 1]);
    expect(attempts.filter((a) => a.consumer === 'audit')).toHaveLength(1);

    // A second replay of the same letter is refused.
    const again = await gql(app.url, `mutation($id: ID!) { replayDeadLetter(id: $id) { status } }`, { id: letters[0]!.node['id'] });
    expect(again.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
  });

  it('discards a dead letter', async () => {
    const topic = uniqueName('orders');
    const app = await startTestApp({
      consumers: [{ name: 'failing', topic, maxAttempts: 1 }],
      handlers: {
        failing: () => {
          throw new Error('nope');
        },
      },
    });
    dispose = app.dispose;
    await gql(app.url, `mutation { publishEvent(input: { topic: "${topic}", type: "x.y", data: 1 }) { outboxId } }`);
    const id = await waitFor(
      async () => {
        const r = await gql<{ deadLetters: { edges: { node: { id: string } }[] } }>(app.url, `{ deadLetters { edges { node { id } } } }`);
        return r.data?.deadLetters.edges[0]?.node.id;
      },
      5000,
      'dead letter',
    );
    const discarded = await gql<{ discardDeadLetter: { status: string } }>(app.url, `mutation { discardDeadLetter(id: "${id}") { status } }`);
    expect(discarded.data?.discardDeadLetter.status).toBe('DISCARDED');
    const replay = await gql(app.url, `mutation { replayDeadLetter(id: "${id}") { status } }`);
    expect(replay.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    const missing = await gql(app.url, `mutation { replayDeadLetter(id: "999999") { status } }`);
    expect(missing.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
  });

  it('refuses to replay a message that was not a CloudEvent, and lets it be discarded', async () => {
    const topic = uniqueName('orders');
    const consumer = uniqueName('strict');
    const app = await startTestApp({ consumers: [{ name: consumer, topic }], handlers: { [consumer]: () => undefined } });
    dispose = app.dispose;
    const letter = await app.services.deadLetters.record({
      consumer,
      event: undecodableEvent('not json', { topic }),
      error: 'message body is not JSON',
      attempts: 1,
    });
    const replay = await gql(app.url, `mutation { replayDeadLetter(id: "${letter.id}") { status } }`);
    expect(replay.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    expect(replay.errors?.[0]?.message).toMatch(/not a valid CloudEvent; it cannot be replayed, only discarded/);
    expect((await app.services.deadLetters.get(letter.id))?.status).toBe('DEAD');
    const discarded = await gql<{ discardDeadLetter: { status: string } }>(app.url, `mutation { discardDeadLetter(id: "${letter.id}") { status } }`);
    expect(discarded.data?.discardDeadLetter.status).toBe('DISCARDED');
  });
});
