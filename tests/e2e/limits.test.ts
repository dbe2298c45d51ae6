import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

/** A raw graphql-transport-ws connection, to break the protocol on purpose. */
function rawSocket(url: string) {
  const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const messages: Record<string, unknown>[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const send = (message: Record<string, unknown>) => socket.send(JSON.stringify(message));
  return { socket, messages, opened, closed, send };
}

const repeat = (n: number, make: (i: number) => string) => Array.from({ length: n }, (_, i) => make(i)).join(' ');

describe('abuse limits', () => {
  let app: App;
  const rows = async () =>
    (await app.services.outbox.count('PENDING')) + (await app.services.outbox.count('PUBLISHED')) + (await app.services.outbox.count('FAILED'));

  beforeAll(async () => {
    app = await startTestApp({
      env: {
        MAX_REQUEST_BYTES: '65536',
        WS_INIT_TIMEOUT_MS: '300',
        WS_MAX_PAYLOAD_BYTES: '4096',
        WS_MAX_SUBSCRIPTIONS: '3',
        BATCH_LIMIT: '3',
        // This schema is shallow: at the defaults (depth 8, cost 5,000) the alias and token limits
        // bind first. Lower limits show that depth and cost are enforced, and configurable.
        GRAPHQL_MAX_DEPTH: '4',
        GRAPHQL_MAX_COST: '60',
      },
    });
  });
  afterAll(async () => app?.dispose());

  describe('query shape (GraphQL Armor)', () => {
    const publish = (alias: string) => `${alias}: publishEvent(input: { topic: "limits", type: "a", data: 1 }) { outboxId }`;
    const cases: [string, string, string][] = [
      ['a query deeper than GRAPHQL_MAX_DEPTH', '{ deadLetters { edges { node { event { id } } } } }', 'QUERY_TOO_DEEP'],
      ['more than 15 aliases, even on mutations that would write', `mutation { ${repeat(16, (i) => publish(`p${i}`))} }`, 'TOO_MANY_ALIASES'],
      ['more than 50 directives', `{ brokers ${repeat(51, () => '@include(if: true)')} { kind } }`, 'TOO_MANY_DIRECTIVES'],
      ['more than 1,000 tokens', `{ ${repeat(400, () => 'brokers { kind }')} }`, 'TOO_MANY_TOKENS'],
      [
        'a query costing more than GRAPHQL_MAX_COST',
        `{ ${repeat(12, (i) => `b${i}: brokers { kind connected circuit lastError pendingEvents }`)} }`,
        'QUERY_TOO_COSTLY',
      ],
    ];
    it.each(cases)('refuses %s, with a code, executing nothing', async (_name, query, code) => {
      const before = await rows();
      const result = await gql(app.url, query);
      expect(result.errors?.map((e) => e.extensions?.['code'])).toContain(code);
      expect(result.data ?? null).toBeNull();
      expect(await rows()).toBe(before);
    });
  });

  it('answers 413 to a body over MAX_REQUEST_BYTES and writes nothing', async () => {
    const before = await rows();
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'mutation($d: JSON!) { publishEvent(input: { topic: "limits", type: "a", data: $d }) { outboxId } }',
        variables: { d: 'x'.repeat(70_000) },
      }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    expect(await rows()).toBe(before);
  });

  it('counts a chunked body, whose length is not declared, against MAX_REQUEST_BYTES as it arrives', async () => {
    /** POSTs `body` in chunks of 16 KiB with no Content-Length (Transfer-Encoding: chunked). */
    const chunked = (body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(app.url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        for (let at = 0; at < body.length; at += 16_384) req.write(body.slice(at, at + 16_384));
        req.end();
      });
    const publish = (size: number) =>
      JSON.stringify({
        query: 'mutation($d: JSON!) { publishEvent(input: { topic: "limits", type: "chunked", data: $d }) { outboxId } }',
        variables: { d: 'x'.repeat(size) },
      });
    const before = await rows();
    const over = await chunked(publish(70_000));
    expect(over.status).toBe(413);
    expect((JSON.parse(over.text) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    expect(await rows()).toBe(before);
    const under = await chunked(publish(40_000));
    expect(under.status).toBe(200);
    expect(JSON.parse(under.text)).toMatchObject({ data: { publishEvent: { outboxId: expect.any(String) } } });
    expect(await rows()).toBe(before + 1);
  });

  it('accepts batches up to BATCH_LIMIT and refuses bigger ones whole', async () => {
    const op = { query: 'mutation { publishEvent(input: { topic: "limits", type: "batch", data: 1 }) { outboxId } }' };
    const post = (body: unknown) => fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const before = await rows();
    const ok = await post([op, op, op]);
    expect(ok.status).toBe(200);
    expect(await rows()).toBe(before + 3);
    const tooMany = await post([op, op, op, op]);
    expect(tooMany.status).toBe(413);
    expect(await rows()).toBe(before + 3);
  });

  describe('graphql-ws', () => {
    it('closes a connection that sends no connection_init in time with 4408', async () => {
      const ws = rawSocket(app.url);
      await ws.opened;
      expect((await ws.closed).code).toBe(4408);
    });

    it('closes a connection that sends connection_init twice with 4429', async () => {
      const ws = rawSocket(app.url);
      await ws.opened;
      ws.send({ type: 'connection_init' });
      await waitFor(() => ws.messages.some((m) => m['type'] === 'connection_ack'), 2000, 'ack');
      ws.send({ type: 'connection_init' });
      expect((await ws.closed).code).toBe(4429);
    });

    it('closes a connection that reuses an operation id with 4409', async () => {
      const ws = rawSocket(app.url);
      await ws.opened;
      ws.send({ type: 'connection_init' });
      await waitFor(() => ws.messages.some((m) => m['type'] === 'connection_ack'), 2000, 'ack');
      const op = { id: 'same', type: 'subscribe', payload: { query: 'subscription { events(topic: "limits") { id } }' } };
      ws.send(op);
      ws.send(op);
      expect((await ws.closed).code).toBe(4409);
    });

    it('closes a connection that sends a message over WS_MAX_PAYLOAD_BYTES with 1009, writing nothing', async () => {
      const before = await rows();
      const ws = rawSocket(app.url);
      await ws.opened;
      ws.send({ type: 'connection_init' });
      await waitFor(() => ws.messages.some((m) => m['type'] === 'connection_ack'), 2000, 'ack');
      ws.send({
        id: '1',
        type: 'subscribe',
        payload: { query: `mutation { publishEvent(input: { topic: "limits", type: "a", data: "${'x'.repeat(5000)}" }) { outboxId } }` },
      });
      expect((await ws.closed).code).toBe(1009);
      expect(await rows()).toBe(before);
    });

    it('refuses subscriptions past WS_MAX_SUBSCRIPTIONS on one connection, for that operation only', async () => {
      const topic = uniqueName('limits');
      const client = wsClient(app.url);
      const query = `subscription($t: String!) { events(topic: $t) { id } }`;
      const subs = Array.from({ length: 4 }, () => subscribe<{ events: { id: string } }>(client, query, { t: topic }));
      await waitFor(() => subs[3]!.errors.length > 0, 5000, 'the fourth subscription refused');
      expect(JSON.stringify(subs[3]!.errors)).toContain('TOO_MANY_SUBSCRIPTIONS');
      await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 3), 5000, 'three live');
      await gql(app.url, `mutation($t: String!) { publishEvent(input: { topic: $t, type: "a", data: 1 }) { outboxId } }`, { t: topic });
      for (const sub of subs.slice(0, 3)) await sub.waitFor(1);
      expect(subs.slice(0, 3).every((s) => s.errors.length === 0)).toBe(true);
      for (const s of subs) s.close();
      await client.dispose();
    });
  });

  describe('introspection', () => {
    it('is on by default outside production', async () => {
      const result = await gql<{ __schema: { queryType: { name: string } } }>(app.url, '{ __schema { queryType { name } } }');
      expect(result.data?.__schema.queryType.name).toBe('Query');
    });

    it('can be turned off, which also hides GraphiQL and field suggestions', async () => {
      const closed = await startTestApp({ env: { INTROSPECTION: 'false' } });
      try {
        const result = await gql(closed.url, '{ __schema { queryType { name } } }');
        expect(result.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
        expect(result.errors?.[0]?.message).toMatch(/introspection/i);
        const typo = await gql(closed.url, '{ broker { kind } }');
        expect(typo.errors?.[0]?.message).not.toMatch(/Did you mean/);
        const page = await fetch(closed.url, { headers: { accept: 'text/html' } });
        expect(await page.text()).not.toContain('<title>event-gateway</title>');
      } finally {
        await closed.dispose();
      }
    });

    it('is off by default when NODE_ENV=production', async () => {
      const prod = await startTestApp({ env: { NODE_ENV: 'production' } });
      try {
        const result = await gql(prod.url, '{ __type(name: "Query") { name } }');
        expect(result.errors?.[0]?.message).toMatch(/introspection/i);
      } finally {
        await prod.dispose();
      }
    });
  });
});
