import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName } from '../helpers/events.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';

describe('dead letters on a real server', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
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
});
