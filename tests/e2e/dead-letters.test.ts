import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';
import { Webhook } from 'standardwebhooks';

describe('dead letters on a real server', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('cuts off a hanging webhook at its timeout, retries, dead-letters and announces it over WebSocket', async () => {
    const calls: number[] = [];
    const hanging: Server = createServer((req) => {
      calls.push(Date.now());
      req.resume(); // read the body, never answer
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      hanging.closeAllConnections();
      return new Promise((r) => hanging.close(r));
    });
    const topic = uniqueName('orders');
    const app = await startTestApp({
      consumers: [
        {
          name: 'slow-hook',
          topic,
          maxAttempts: 2,
          backoff: { initialMs: 50, maxMs: 50, multiplier: 1, jitter: 0 },
          webhook: { url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`, timeoutMs: 200, headers: {} },
        },
      ],
    });
    cleanups.push(() => app.dispose());
    const client = wsClient(app.url);
    cleanups.push(() => client.dispose());
    const sub = subscribe<{ deadLettered: { consumer: string; error: string; attempts: number; event: { id: string } } }>(
      client,
      `subscription { deadLettered(consumer: "slow-hook") { consumer error attempts status event { id } } }`,
    );
    await new Promise((r) => setTimeout(r, 200)); // let the subscription register
    const published = await gql<{ publishEvent: { event: { id: string } } }>(
      app.url,
      `mutation($t: String!) { publishEvent(input: { topic: $t, type: "order.created", data: { n: 1 } }) { event { id } } }`,
      { t: topic },
    );
    const [letter] = await sub.waitFor(1, 10_000);
    expect(letter!.deadLettered).toMatchObject({
      consumer: 'slow-hook',
      attempts: 2,
      event: { id: published.data!.publishEvent.event.id },
    });
    expect(letter!.deadLettered.error).toMatch(/did not answer within 200 ms/);
    expect(calls).toHaveLength(2);
    const status = await gql<{ consumers: { deadLettered: number; retrying: number }[] }>(app.url, `{ consumers { deadLettered retrying } }`);
    expect(status.data!.consumers[0]).toEqual({ deadLettered: 1, retrying: 0 });
  });

  it('signs every attempt and the replay with the same webhook-id; a 404 is dead-lettered at once with its status', async () => {
    const secret = `whsec_${Buffer.from('e2e webhook secret 24 by').toString('base64')}`;
    const calls: { id: string; verified: boolean }[] = [];
    // The first call is refused for good, the replay's first try finds the receiver busy, then it takes it.
    const statusOf = (call: number) => (call === 1 ? 404 : call === 2 ? 503 : 200);
    const receiver: Server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        let verified = true;
        try {
          new Webhook(secret).verify(raw, req.headers as Record<string, string>);
        } catch {
          verified = false;
        }
        calls.push({ id: String(req.headers['webhook-id']), verified });
        const status = statusOf(calls.length);
        res.writeHead(status).end(status === 404 ? 'no such order' : '');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      receiver.closeAllConnections();
      return new Promise((r) => receiver.close(r));
    });
    const topic = uniqueName('signed');
    const app = await startTestApp({
      consumers: [
        {
          name: 'signed-hook',
          topic,
          maxAttempts: 5,
          backoff: { initialMs: 20, maxMs: 20, multiplier: 1, jitter: 0 },
          webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, timeoutMs: 1000, headers: {}, secret: [secret] },
        },
      ],
    });
    cleanups.push(() => app.dispose());
    const published = await gql<{ publishEvent: { event: { id: string } } }>(
      app.url,
      `mutation($t: String!) { publishEvent(input: { topic: $t, type: "order.created", data: { n: 1 } }) { event { id } } }`,
      { t: topic },
    );
    const eventId = published.data!.publishEvent.event.id;
    const letters = async () =>
      (
        await gql<{ deadLetters: { edges: { node: { id: string; attempts: number; error: string; status: string } }[] } }>(
          app.url,
          `{ deadLetters(consumer: "signed-hook", first: 5) { edges { node { id attempts error status } } } }`,
        )
      ).data!.deadLetters.edges.map((e) => e.node);
    await waitFor(async () => (await letters()).length === 1, 10_000, 'the dead letter');
    const [letter] = await letters();
    // One attempt of five: a 404 will not turn into a 2xx by retrying.
    expect(letter).toMatchObject({ attempts: 1, status: 'DEAD' });
    expect(letter!.error).toContain('answered 404: no such order');
    expect(calls).toEqual([{ id: eventId, verified: true }]);

    const replay = await gql(app.url, `mutation($id: ID!) { replayDeadLetter(id: $id) { status } }`, { id: letter!.id });
    expect(replay.errors).toBeUndefined();
    await waitFor(() => calls.length === 3, 10_000, 'the retried replay');
    expect(calls).toEqual([1, 2, 3].map(() => ({ id: eventId, verified: true })));
    expect((await letters())[0]!.status).toBe('REPLAYED');
  });
});
