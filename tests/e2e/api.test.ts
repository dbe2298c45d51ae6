import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { sseSubscribe, subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const PUBLISH = /* GraphQL */ `
  mutation Publish($input: PublishEventInput!) {
    publishEvent(input: $input) {
      outboxId
      duplicate
      event { id source type topic subject time dataContentType data key correlationId causationId }
    }
  }
`;
const EVENTS = /* GraphQL */ `
  subscription Events($topic: String!, $types: [String!]) {
    events(topic: $topic, types: $types) { id source type topic subject time dataContentType data key correlationId causationId }
  }
`;

describe('GraphQL API on a real server', () => {
  let app: App;
  let webhook: Server;
  const webhookCalls: unknown[] = [];
  const webhookTopic = uniqueName('hooked');

  beforeAll(async () => {
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        webhookCalls.push({ contentType: req.headers['content-type'], body: JSON.parse(body) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    app = await startTestApp({
      env: { MAX_EVENT_BYTES: '2048' },
      consumers: [
        { name: 'hook', topic: webhookTopic, webhook: { url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/in`, timeoutMs: 2000, headers: {} } },
      ],
    });
  });
  afterAll(async () => {
    await app?.dispose();
    webhook.closeAllConnections();
    await new Promise((r) => webhook.close(r));
  });

  const outboxCount = async () =>
    (await app.services.outbox.count('PENDING')) + (await app.services.outbox.count('PUBLISHED')) + (await app.services.outbox.count('FAILED'));
  const waitForBrokerSubscription = (topic: string, subscribers = 1) =>
    waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers >= subscribers), 5000, `subscription to ${topic}`);

  it('delivers a mutation’s event to a graphql-ws subscription with every attribute', async () => {
    const topic = uniqueName('orders');
    const client = wsClient(app.url);
    const sub = subscribe<{ events: Record<string, unknown> }>(client, EVENTS, { topic });
    await waitForBrokerSubscription(topic);
    const result = await gql<{ publishEvent: { event: Record<string, unknown> } }>(app.url, PUBLISH, {
      input: { topic, type: 'order.created', key: 'o-1', subject: 'order/1', source: 'shop', causationId: 'cmd-1', data: { total: 42, items: ['a'] } },
    });
    const [received] = await sub.waitFor(1);
    expect(received!.events).toEqual(result.data!.publishEvent.event);
    expect(received!.events).toMatchObject({ topic, type: 'order.created', key: 'o-1', source: 'shop', dataContentType: 'application/json' });
    sub.close();
    await client.dispose();
  });

  it('filters a subscription by type', async () => {
    const topic = uniqueName('orders');
    const client = wsClient(app.url);
    const sub = subscribe<{ events: { type: string } }>(client, EVENTS, { topic, types: ['order.paid'] });
    await waitForBrokerSubscription(topic);
    await gql(
      app.url,
      `mutation($t: String!) { publishEvents(inputs: [
      { topic: $t, type: "order.created", data: 1 }, { topic: $t, type: "order.paid", data: 2 } ]) { outboxId } }`,
      { t: topic },
    );
    const [only] = await sub.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sub.received).toHaveLength(1);
    expect(only!.events.type).toBe('order.paid');
    sub.close();
    await client.dispose();
  });

  it('serves subscriptions over SSE to clients that ask for text/event-stream', async () => {
    const topic = uniqueName('orders');
    const sse = sseSubscribe<{ events: { id: string; data: unknown } }>(app.url, EVENTS, { topic });
    await waitForBrokerSubscription(topic);
    const result = await gql<{ publishEvent: { event: { id: string } } }>(app.url, PUBLISH, { input: { topic, type: 'a.b', data: { via: 'sse' } } });
    const [received] = await sse.waitFor(1);
    expect(received!.events).toMatchObject({ id: result.data!.publishEvent.event.id, data: { via: 'sse' } });
    await sse.close();
  });

  it('shares one broker subscription between many subscribers of a topic', async () => {
    const topic = uniqueName('fanout');
    // Three connections of ten subscriptions each (a connection may hold at most 20).
    const clients = [wsClient(app.url), wsClient(app.url), wsClient(app.url)];
    const subs = clients.flatMap((client) => Array.from({ length: 10 }, () => subscribe<{ events: { id: string } }>(client, EVENTS, { topic })));
    await waitForBrokerSubscription(topic, 30);
    // Thirty subscribers of one operation: one group, one broker subscription.
    expect(app.services.groups.stats().filter((s) => s.topic === topic)).toEqual([{ topic, groups: 1, subscribers: 30 }]);
    expect(app.services.hub.stats().filter((s) => s.topic === topic)).toEqual([{ topic, subscribers: 1 }]);
    await gql(app.url, PUBLISH, { input: { topic, type: 'a.b', data: { n: 1 } } });
    for (const sub of subs) await sub.waitFor(1);
    for (const s of subs) s.close();
    await Promise.all(clients.map((client) => client.dispose()));
    await waitFor(() => !app.services.hub.stats().some((s) => s.topic === topic), 5000, 'broker subscription closed');
  });

  it('publishes idempotently with a client-chosen id', async () => {
    const topic = uniqueName('orders');
    const id = uniqueName('evt');
    const before = await outboxCount();
    const first = await gql<{ publishEvent: { duplicate: boolean; outboxId: string; event: { data: unknown } } }>(app.url, PUBLISH, {
      input: { id, topic, type: 'a.b', data: { v: 1 } },
    });
    const second = await gql<{ publishEvent: { duplicate: boolean; outboxId: string; event: { data: unknown } } }>(app.url, PUBLISH, {
      input: { id, topic, type: 'a.b', data: { v: 2 } },
    });
    expect(first.data!.publishEvent.duplicate).toBe(false);
    expect(second.data!.publishEvent).toEqual({ ...first.data!.publishEvent, duplicate: true });
    expect(second.data!.publishEvent.event.data).toEqual({ v: 1 });
    expect(await outboxCount()).toBe(before + 1);
  });

  it('takes the correlation id from the x-correlation-id header', async () => {
    const result = await gql<{ publishEvent: { event: { correlationId: string } } }>(
      app.url,
      PUBLISH,
      { input: { topic: uniqueName('t'), type: 'a.b', data: 1 } },
      { 'x-correlation-id': 'req-123' },
    );
    expect(result.data!.publishEvent.event.correlationId).toBe('req-123');
  });

  it('treats an empty x-correlation-id header as none, and ignores one no input falls back to', async () => {
    const empty = await gql<{ publishEvent: { event: { id: string; correlationId: string } } }>(
      app.url,
      PUBLISH,
      { input: { topic: uniqueName('t'), type: 'a.b', data: 1 } },
      { 'x-correlation-id': '' },
    );
    expect(empty.data!.publishEvent.event.correlationId).toBe(empty.data!.publishEvent.event.id);
    const own = await gql<{ publishEvent: { event: { correlationId: string } } }>(
      app.url,
      PUBLISH,
      { input: { topic: uniqueName('t'), type: 'a.b', data: 1, correlationId: 'mine' } },
      { 'x-correlation-id': 'r'.repeat(201) },
    );
    expect(own.data!.publishEvent.event.correlationId).toBe('mine');
  });

  it('refuses an x-correlation-id header that is too long, writing nothing', async () => {
    const before = await outboxCount();
    const result = await gql(app.url, PUBLISH, { input: { topic: uniqueName('t'), type: 'a.b', data: 1 } }, { 'x-correlation-id': 'r'.repeat(201) });
    expect(result.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(result.errors?.[0]?.message).toMatch(/x-correlation-id header: correlationId must be at most 200 characters/);
    expect(await outboxCount()).toBe(before);
  });

  describe('bad input gets a coded error and writes nothing', () => {
    const cases: [string, string, Record<string, unknown> | undefined, string][] = [
      ['an unknown input field', PUBLISH, { input: { topic: 't', type: 'a', data: 1, colour: 'red' } }, 'BAD_USER_INPUT'],
      ['a missing topic', PUBLISH, { input: { type: 'a', data: 1 } }, 'BAD_USER_INPUT'],
      ['a missing type', PUBLISH, { input: { topic: 't', data: 1 } }, 'BAD_USER_INPUT'],
      ['missing data', PUBLISH, { input: { topic: 't', type: 'a' } }, 'BAD_USER_INPUT'],
      [
        'data that is not JSON',
        `mutation { publishEvent(input: { topic: "t", type: "a", data: NOT_JSON }) { outboxId } }`,
        undefined,
        'GRAPHQL_VALIDATION_FAILED',
      ],
      ['a topic with spaces', PUBLISH, { input: { topic: 'my topic', type: 'a', data: 1 } }, 'BAD_USER_INPUT'],
      ['a type with a wildcard', PUBLISH, { input: { topic: 't', type: 'order.*', data: 1 } }, 'BAD_USER_INPUT'],
      ['a type the gateway reserves', PUBLISH, { input: { topic: 't', type: 'gateway.invalid-message', data: 1 } }, 'BAD_USER_INPUT'],
      ['an oversized payload', PUBLISH, { input: { topic: 't', type: 'a', data: { blob: 'x'.repeat(4096) } } }, 'PAYLOAD_TOO_LARGE'],
      [
        'an unknown field in the query',
        `mutation { publishEvent(input: { topic: "t", type: "a", data: 1 }) { nope } }`,
        undefined,
        'GRAPHQL_VALIDATION_FAILED',
      ],
    ];
    it.each(cases)('%s', async (_name, query, variables, code) => {
      const before = await outboxCount();
      const result = await gql(app.url, query, variables);
      expect(result.errors?.[0]?.extensions?.['code']).toBe(code);
      expect(result.errors?.[0]?.message).toBeTruthy();
      expect(await outboxCount()).toBe(before);
    });

    it('names the field and the limit for an oversized payload', async () => {
      const result = await gql(app.url, PUBLISH, { input: { topic: 't', type: 'a', data: 'x'.repeat(5000) } });
      expect(result.errors?.[0]?.message).toMatch(/over the limit of 2048 bytes/);
      expect(result.errors?.[0]?.extensions).toMatchObject({ field: 'input.data', limit: 2048 });
    });

    it('writes no event of a batch when one input is bad', async () => {
      const before = await outboxCount();
      const result = await gql(app.url, `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { outboxId } }`, {
        inputs: [
          { topic: 'ok', type: 'a', data: 1 },
          { topic: 'ok', type: 'a', data: 2 },
          { topic: 'bad topic', type: 'a', data: 3 },
        ],
      });
      expect(result.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
      expect(result.errors?.[0]?.message).toMatch(/^inputs\[2\]\.topic/);
      expect(await outboxCount()).toBe(before);
    });

    it('answers a body that is not JSON with 400', async () => {
      const before = await outboxCount();
      const response = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": "mutation {' });
      expect(response.status).toBe(400);
      expect(await outboxCount()).toBe(before);
    });
  });

  it('POSTs events to a webhook consumer as structured CloudEvents', async () => {
    const result = await gql<{ publishEvent: { event: { id: string } } }>(app.url, PUBLISH, { input: { topic: webhookTopic, type: 'a.b', data: { x: 1 } } });
    await waitFor(() => webhookCalls.length > 0, 5000, 'webhook call');
    expect(webhookCalls[0]).toMatchObject({
      contentType: 'application/cloudevents+json',
      body: { specversion: '1.0', id: result.data!.publishEvent.event.id, topic: webhookTopic, data: { x: 1 } },
    });
  });

  it('answers /health, /ready and serves GraphiQL to a browser', async () => {
    const base = app.url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const page = await fetch(app.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('event-gateway');
  });

  it('lists the outbox, consumers and brokers', async () => {
    const result = await gql<{
      outbox: { edges: { node: { status: string } }[]; pageInfo: { hasNextPage: boolean } };
      brokers: { kind: string; connected: boolean; circuit: string }[];
      consumers: { name: string }[];
    }>(
      app.url,
      `{ outbox(first: 2) { edges { cursor node { id status attempts createdAt event { id } } } pageInfo { hasNextPage endCursor } }
                  brokers { kind connected circuit lastError pendingEvents } consumers { name topic lag } }`,
    );
    expect(result.errors).toBeUndefined();
    expect(result.data!.outbox.edges).toHaveLength(2);
    expect(result.data!.outbox.pageInfo.hasNextPage).toBe(true);
    expect(result.data!.brokers).toEqual([expect.objectContaining({ kind: 'memory', connected: true, circuit: 'CLOSED' })]);
    expect(result.data!.consumers.map((c) => c.name)).toEqual(['hook']);
  });
});
