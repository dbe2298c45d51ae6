import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/authenticator.js';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { FlakyBroker } from '../helpers/flaky-broker.js';
import { scrapeMetrics } from '../helpers/metrics.js';
import { openSse, sseSubscribe, subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;
type Received = { events: { id: string; type: string; cursor: string | null } };

const PUBLISH = `mutation($t: String!, $type: String!, $n: Int) { publishEvent(input: { topic: $t, type: $type, data: { n: $n } }) { event { id } } }`;
const EVENTS = `subscription($t: String!, $types: [String!], $after: String) { events(topic: $t, types: $types, after: $after) { id type cursor } }`;

async function publish(app: App, topic: string, n: number, type = 'order.created', headers: Record<string, string> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const result = await gql<{ publishEvent: { event: { id: string } } }>(app.url, PUBLISH, { t: topic, type, n: i }, headers);
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    ids.push(result.data!.publishEvent.event.id);
  }
  return ids;
}

/** Raw SSE over fetch, keeping each event's `id:` line too. */
async function sseRaw(url: string, query: string, variables: Record<string, unknown>, headers: Record<string, string>) {
  const stream = await openSse(url, { query, variables }, headers);
  const frames = () => stream.frames.filter((f) => f.event === 'next').map((f) => ({ id: f.id, data: (JSON.parse(f.data) as { data: Received }).data }));
  return { status: stream.status, frames, close: stream.close };
}

describe('subscriptions: one execution per group, resume after a cursor', () => {
  let app: App;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => app?.dispose());

  it('executes each event once for all subscribers of one operation, whatever their transport', async () => {
    const topic = uniqueName('group');
    const clients = [wsClient(app.url), wsClient(app.url)];
    const subs = clients.flatMap((client) => Array.from({ length: 10 }, () => subscribe<Received>(client, EVENTS, { t: topic })));
    const sse = sseSubscribe<Received>(app.url, EVENTS, { t: topic });
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 21), 5000, '21 subscribers');
    expect(app.services.groups.stats().find((s) => s.topic === topic)?.groups).toBe(1);
    const before = { ...app.services.groups.totals };
    const [id] = await publish(app, topic, 1);
    for (const sub of subs) expect((await sub.waitFor(1))[0]!.events.id).toBe(id);
    expect((await sse.waitFor(1))[0]!.events.id).toBe(id);
    expect(app.services.groups.totals.executions - before.executions).toBe(1);
    expect(app.services.groups.totals.deliveries - before.deliveries).toBe(21);
    // Each socket got its own operation id around the shared payload.
    expect(new Set(subs.map((s) => JSON.stringify(s.received[0]))).size).toBe(1);
    for (const s of subs) s.close();
    await sse.close();
    await Promise.all(clients.map((c) => c.dispose()));
  });

  it('resumes a WebSocket subscription after its cursor: the missed events first, then live, none twice', async () => {
    const topic = uniqueName('resume');
    const client = wsClient(app.url);
    const first = subscribe<Received>(client, EVENTS, { t: topic });
    await waitFor(() => app.services.groups.stats().some((s) => s.topic === topic), 5000, 'subscribed');
    const ids = await publish(app, topic, 5);
    const seen = await first.waitFor(5);
    expect(seen.map((r) => r.events.id)).toEqual(ids);
    first.close();
    const missed = await publish(app, topic, 3);
    const resumed = subscribe<Received>(client, EVENTS, { t: topic, after: seen[2]!.events.cursor });
    const got = await resumed.waitFor(5);
    expect(got.map((r) => r.events.id)).toEqual([...ids.slice(3), ...missed]);
    const live = await publish(app, topic, 2);
    await resumed.waitFor(7);
    expect(resumed.received.map((r) => r.events.id)).toEqual([...ids.slice(3), ...missed, ...live]);
    resumed.close();
    await client.dispose();
  });

  it('sends each SSE event with its cursor as the id, and resumes a reconnect with Last-Event-ID', async () => {
    const topic = uniqueName('sse');
    const stream = await sseRaw(app.url, EVENTS, { t: topic }, {});
    await waitFor(() => app.services.groups.stats().some((s) => s.topic === topic), 5000, 'subscribed');
    const ids = await publish(app, topic, 4);
    await waitFor(() => stream.frames().length >= 4, 5000, '4 SSE events');
    expect(stream.frames().map((f) => f.id)).toEqual(stream.frames().map((f) => f.data.events.cursor));
    await stream.close();
    const missed = await publish(app, topic, 2);
    const again = await sseRaw(app.url, EVENTS, { t: topic }, { 'last-event-id': stream.frames()[1]!.id! });
    await waitFor(() => again.frames().length >= 4, 5000, 'resumed SSE events');
    expect(again.frames().map((f) => f.data.events.id)).toEqual([...ids.slice(2), ...missed]);
    await again.close();
  });

  it('refuses a cursor the broker no longer keeps with CURSOR_EXPIRED, and one it never made with BAD_USER_INPUT', async () => {
    const small = await startTestApp({ env: { MEMORY_RETAIN_EVENTS: '3' } });
    try {
      const topic = uniqueName('expire');
      const client = wsClient(small.url);
      const first = subscribe<Received>(client, EVENTS, { t: topic });
      await waitFor(() => small.services.groups.stats().some((s) => s.topic === topic), 5000, 'subscribed');
      await publish(small, topic, 1);
      const [oldest] = await first.waitFor(1);
      await publish(small, topic, 5);
      const expired = subscribe<Received>(client, EVENTS, { t: topic, after: oldest!.events.cursor });
      await waitFor(() => expired.errors.length > 0, 5000, 'refusal');
      expect(JSON.stringify(expired.errors)).toContain('CURSOR_EXPIRED');
      const garbage = subscribe<Received>(client, EVENTS, { t: topic, after: 'not-a-cursor' });
      await waitFor(() => garbage.errors.length > 0, 5000, 'refusal');
      expect(JSON.stringify(garbage.errors)).toContain('BAD_USER_INPUT');
      expect(expired.received).toEqual([]);
      first.close();
      await client.dispose();
    } finally {
      await small.dispose();
    }
  });
});

const SECRET = 'groups-e2e-secret-that-is-at-least-32-bytes';

describe('subscriptions: authorization stays per subscriber inside a group', () => {
  let app: App;
  const KEYS = { all: 'key-all-orders', created: 'key-created-only', publisher: 'key-publisher' };
  beforeAll(async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gw-groups-')), 'gateway.json');
    writeFileSync(
      path,
      JSON.stringify({
        auth: {
          apiKeys: [
            { name: 'all', sha256: sha256Hex(KEYS.all), scopes: ['subscribe:orders.*'] },
            { name: 'created', sha256: sha256Hex(KEYS.created), scopes: ['subscribe:orders.order.created'] },
            { name: 'publisher', sha256: sha256Hex(KEYS.publisher), scopes: ['publish:orders.*'] },
          ],
          jwt: { issuer: 'https://auth.test', audience: 'event-gateway', secretEnv: 'GROUPS_JWT_SECRET', algorithms: ['HS256'] },
        },
      }),
    );
    process.env['GROUPS_JWT_SECRET'] = SECRET;
    app = await startTestApp({ env: { GATEWAY_CONFIG: path } });
  });
  afterAll(async () => app?.dispose());

  const ws = (key: string) => wsClient(app.url, { connectionParams: { 'x-api-key': key } });

  it('never lets a group deliver an event to a subscriber whose scopes do not cover it', async () => {
    const all = ws(KEYS.all);
    const created = ws(KEYS.created);
    // The same document from both: only the one allowed every type of the topic may open it.
    const wide = subscribe<Received>(all, EVENTS, { t: 'orders' });
    const refused = subscribe<Received>(created, EVENTS, { t: 'orders' });
    await waitFor(() => refused.errors.length > 0, 5000, 'refusal');
    expect(JSON.stringify(refused.errors)).toContain('FORBIDDEN');
    // Both may open the typed document: they share its group, each allowed on its own.
    const typedAll = subscribe<Received>(all, EVENTS, { t: 'orders', types: ['order.created'] });
    const typedCreated = subscribe<Received>(created, EVENTS, { t: 'orders', types: ['order.created'] });
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === 'orders' && s.subscribers === 3), 5000, 'three subscribers');
    expect(app.services.groups.stats().find((s) => s.topic === 'orders')?.groups).toBe(2);
    const publisher = { 'x-api-key': KEYS.publisher };
    const [paid] = await publish(app, 'orders', 1, 'order.paid', publisher);
    const [made] = await publish(app, 'orders', 1, 'order.created', publisher);
    await wide.waitFor(2);
    await typedAll.waitFor(1);
    await typedCreated.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(wide.received.map((r) => r.events.id)).toEqual([paid, made]);
    expect(typedCreated.received.map((r) => r.events.id)).toEqual([made]);
    expect(refused.received).toEqual([]);
    for (const s of [wide, typedAll, typedCreated]) s.close();
    await Promise.all([all.dispose(), created.dispose()]);
  });

  it('answers an SSE subscription without credentials with 401, as one with wrong credentials', async () => {
    const none = await sseRaw(app.url, EVENTS, { t: 'orders' }, {});
    const wrong = await sseRaw(app.url, EVENTS, { t: 'orders' }, { 'x-api-key': 'not-a-key' });
    expect(none.status).toBe(401);
    expect(wrong.status).toBe(401);
    await none.close();
    await wrong.close();
  });

  it('ends an SSE subscription when its token expires, leaving the group to the others', async () => {
    const short = await new SignJWT({ scope: 'subscribe:orders.*' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://auth.test')
      .setAudience('event-gateway')
      .setSubject('bob')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
      .sign(new TextEncoder().encode(SECRET));
    const topic = 'orders';
    const expiring = sseSubscribe<Received>(app.url, EVENTS, { t: topic, types: ['order.shipped'] }, { authorization: `Bearer ${short}` });
    const client = ws(KEYS.all);
    const staying = subscribe<Received>(client, EVENTS, { t: topic, types: ['order.shipped'] });
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers >= 2), 5000, 'both subscribed');
    await waitFor(() => expiring.errors.length > 0, 10_000, 'the expiry');
    expect(JSON.stringify(expiring.errors)).toContain('UNAUTHENTICATED');
    await publish(app, topic, 1, 'order.shipped', { 'x-api-key': KEYS.publisher });
    await staying.waitFor(1);
    expect(expiring.received).toEqual([]);
    staying.close();
    await expiring.close();
    await client.dispose();
  });
});

describe('subscriptions: a failure the gateway does not expect', () => {
  let app: App;
  let broker: FlakyBroker;
  beforeAll(async () => {
    broker = new FlakyBroker();
    app = await startTestApp({ broker });
  });
  afterAll(async () => app?.dispose());

  it('reaches a subscriber masked, the same over WebSocket and SSE, and leaves no live subscription behind', async () => {
    const topic = uniqueName('broken');
    broker.brokenTopics.add(topic);
    const before = await scrapeMetrics(app.url);
    const client = wsClient(app.url);
    const ws = subscribe<Received>(client, EVENTS, { t: topic });
    const sse = sseSubscribe<Received>(app.url, EVENTS, { t: topic });
    await waitFor(() => ws.errors.length > 0 && sse.errors.length > 0, 5000, 'both subscriptions refused');
    for (const errors of [ws.errors, sse.errors]) {
      expect(errors).toEqual([expect.objectContaining({ message: 'Unexpected error.' })]);
      expect(JSON.stringify(errors)).not.toContain('10.0.0.7');
    }
    const after = await scrapeMetrics(app.url);
    for (const transport of ['websocket', 'sse']) expect(after.value('gateway_subscriptions', { transport })).toBe(0);
    const setUps = (s: typeof before) => s.count('gateway_graphql_operation_duration_seconds', { operation_type: 'subscription' }) ?? 0;
    expect(setUps(after)).toBe(setUps(before) + 2);
    expect(app.services.groups.stats().find((s) => s.topic === topic)).toBeUndefined();

    // Once the broker serves the topic again, the same operation subscribes.
    broker.brokenTopics.delete(topic);
    const again = subscribe<Received>(client, EVENTS, { t: topic });
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 1), 5000, 'subscribed');
    expect((await scrapeMetrics(app.url)).value('gateway_subscriptions', { transport: 'websocket' })).toBe(1);
    const [id] = await publish(app, topic, 1);
    expect((await again.waitFor(1))[0]!.events.id).toBe(id);
    again.close();
    await sse.close();
    await client.dispose();
  });
});
