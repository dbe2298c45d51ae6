import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sha256Hex } from '../../src/auth/authenticator.js';
import { gql, startTestApp } from '../helpers/app.js';
import { makeEvent, uniqueName, waitFor } from '../helpers/events.js';
import { sseSubscribe, subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const SECRET = 'auth-e2e-secret-that-is-at-least-32-bytes';
const KEYS = {
  publisher: 'key-publisher',
  typed: 'key-typed',
  reader: 'key-reader',
  admin: 'key-admin',
};
const PUBLISH = `mutation($t: String!, $type: String!) { publishEvent(input: { topic: $t, type: $type, data: 1 }) { outboxId } }`;
const EVENTS = `subscription($t: String!, $types: [String!]) { events(topic: $t, types: $types) { id type } }`;

function writeAuthConfig(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gw-auth-')), 'gateway.json');
  writeFileSync(
    path,
    JSON.stringify({
      auth: {
        apiKeys: [
          { name: 'publisher', sha256: sha256Hex(KEYS.publisher), scopes: ['publish:orders.*'] },
          { name: 'typed', sha256: sha256Hex(KEYS.typed), scopes: ['publish:orders.order.created', 'subscribe:orders.order.created'] },
          { name: 'reader', sha256: sha256Hex(KEYS.reader), scopes: ['subscribe:orders.*'] },
          { name: 'ops', sha256: sha256Hex(KEYS.admin), scopes: ['admin'] },
        ],
        jwt: { issuer: 'https://auth.test', audience: 'event-gateway', secretEnv: 'E2E_JWT_SECRET', algorithms: ['HS256'] },
      },
    }),
  );
  return path;
}

const token = (scope: string, exp = '5m') =>
  new SignJWT({ scope })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://auth.test')
    .setAudience('event-gateway')
    .setSubject('alice')
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(SECRET));

/** Opens a raw graphql-ws connection with this connection_init payload; resolves ack or close. */
async function connectRaw(url: string, payload: Record<string, unknown> | undefined) {
  const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const outcome = new Promise<{ ack: boolean; code?: number; reason?: string }>((resolve) => {
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') resolve({ ack: true });
    });
    socket.on('close', (code, reason) => resolve({ ack: false, code, reason: reason.toString() }));
  });
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload }));
  const result = await outcome;
  socket.close();
  return result;
}

describe('authorization', () => {
  let app: App;
  const rows = async () =>
    (await app.services.outbox.count('PENDING')) + (await app.services.outbox.count('PUBLISHED')) + (await app.services.outbox.count('FAILED'));
  const as = (key: keyof typeof KEYS) => ({ 'x-api-key': KEYS[key] });

  beforeAll(async () => {
    process.env['E2E_JWT_SECRET'] = SECRET;
    app = await startTestApp({ env: { GATEWAY_CONFIG: writeAuthConfig() } });
  });
  afterAll(async () => app?.dispose());

  describe('over HTTP', () => {
    it('asks an anonymous caller to authenticate and writes nothing', async () => {
      const before = await rows();
      const result = await gql(app.url, PUBLISH, { t: 'orders', type: 'order.created' });
      expect(result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
      expect(result.errors?.[0]?.message).toMatch(/authentication required/);
      expect(await rows()).toBe(before);
    });

    it('answers 401 to a wrong API key or a bad token, before anything runs', async () => {
      const before = await rows();
      const attempts: Record<string, string>[] = [
        { 'x-api-key': 'nope' },
        { authorization: 'Bearer not-a-token' },
        { authorization: `Bearer ${await token('admin', '-5m')}` },
      ];
      for (const headers of attempts) {
        const result = await gql(app.url, PUBLISH, { t: 'orders', type: 'order.created' }, headers);
        expect(result.status).toBe(401);
        expect(result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
      }
      expect(await rows()).toBe(before);
    });

    it('allows publish:orders.* to publish any type to orders, and nothing else', async () => {
      const before = await rows();
      expect((await gql(app.url, PUBLISH, { t: 'orders', type: 'order.shipped' }, as('publisher'))).errors).toBeUndefined();
      const denied = await gql(app.url, PUBLISH, { t: 'payments', type: 'payment.captured' }, as('publisher'));
      expect(denied.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
      expect(denied.errors?.[0]?.message).toMatch(/api-key "publisher" lacks the scope Mutation.publishEvent needs/);
      const mixed = await gql(
        app.url,
        `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { outboxId } }`,
        {
          inputs: [
            { topic: 'orders', type: 'a', data: 1 },
            { topic: 'payments', type: 'b', data: 2 },
          ],
        },
        as('publisher'),
      );
      expect(mixed.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
      expect(await rows()).toBe(before + 1);
    });

    it('allows a type-specific scope for that type only', async () => {
      expect((await gql(app.url, PUBLISH, { t: 'orders', type: 'order.created' }, as('typed'))).errors).toBeUndefined();
      const other = await gql(app.url, PUBLISH, { t: 'orders', type: 'order.cancelled' }, as('typed'));
      expect(other.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    });

    it('keeps the outbox, DLQ, replay, discard, consumers and brokers for admin', async () => {
      const adminOps = [
        '{ outbox(first: 1) { edges { node { id } } } }',
        '{ deadLetters(first: 1) { edges { node { id } } } }',
        '{ consumers { name } }',
        '{ brokers { kind } }',
        '{ processedMessages(consumer: "x", first: 1) { edges { node { eventId } } } }',
        'mutation { replayDeadLetter(id: "1") { id } }',
        'mutation { discardDeadLetter(id: "1") { id } }',
        'mutation { retryOutboxEntry(id: "1") { id } }',
      ];
      for (const query of adminOps) {
        const denied = await gql(app.url, query, undefined, as('publisher'));
        expect(denied.errors?.[0]?.extensions?.['code'], query).toBe('FORBIDDEN');
        const allowed = await gql(app.url, query, undefined, as('admin'));
        expect(allowed.errors?.[0]?.extensions?.['code'], query).not.toBe('FORBIDDEN');
      }
      expect((await gql(app.url, '{ brokers { kind } }', undefined, as('admin'))).data).toEqual({ brokers: [{ kind: 'memory' }] });
    });

    it('accepts a bearer JWT and applies the scopes in its scope claim', async () => {
      const headers = { authorization: `Bearer ${await token('publish:orders.* admin')}` };
      expect((await gql(app.url, PUBLISH, { t: 'orders', type: 'x' }, headers)).errors).toBeUndefined();
      expect((await gql(app.url, '{ consumers { name } }', undefined, headers)).errors).toBeUndefined();
      const denied = await gql(app.url, PUBLISH, { t: 'payments', type: 'x' }, headers);
      expect(denied.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    });

    it('applies subscribe scopes to SSE subscriptions', async () => {
      const topic = 'orders';
      const sse = sseSubscribe<{ events: { id: string } }>(app.url, EVENTS, { t: topic }, as('reader'));
      await waitFor(() => app.services.groups.stats().some((s) => s.topic === topic), 5000, 'SSE subscription');
      await gql(app.url, PUBLISH, { t: topic, type: 'order.created' }, as('publisher'));
      await sse.waitFor(1);
      await sse.close();
      const denied = sseSubscribe<unknown>(app.url, EVENTS, { t: 'payments' }, as('reader'));
      await waitFor(() => denied.errors.length > 0, 5000, 'SSE refusal');
      expect(JSON.stringify(denied.errors)).toContain('FORBIDDEN');
      await denied.close();
    });
  });

  describe('over WebSocket', () => {
    it('refuses connection_init without credentials, or with wrong ones, with 4403', async () => {
      expect(await connectRaw(app.url, undefined)).toMatchObject({ ack: false, code: 4403 });
      const wrong = await connectRaw(app.url, { 'x-api-key': 'nope' });
      expect(wrong).toMatchObject({ ack: false, code: 4403 });
      expect(wrong.reason).toMatch(/invalid API key/);
      const expired = await connectRaw(app.url, { authorization: `Bearer ${await token('subscribe:*', '-5m')}` });
      expect(expired.reason).toMatch(/expired/);
      expect(await connectRaw(app.url, { apiKey: KEYS.reader })).toEqual({ ack: true });
      expect(await connectRaw(app.url, { headers: { Authorization: `Bearer ${await token('subscribe:*')}` } })).toEqual({ ack: true });
    });

    it('allows subscribe:orders.* to read orders; another topic fails for that operation only', async () => {
      const client = wsClient(app.url, { connectionParams: { 'x-api-key': KEYS.reader } });
      const allowed = subscribe<{ events: { id: string } }>(client, EVENTS, { t: 'orders' });
      const denied = subscribe<{ events: { id: string } }>(client, EVENTS, { t: 'payments' });
      await waitFor(() => denied.errors.length > 0, 5000, 'refusal');
      expect(JSON.stringify(denied.errors)).toContain('FORBIDDEN');
      await waitFor(() => app.services.groups.stats().some((s) => s.topic === 'orders'), 5000, 'orders subscription');
      await gql(app.url, PUBLISH, { t: 'orders', type: 'order.created' }, as('publisher'));
      await allowed.waitFor(1);
      expect(allowed.errors).toEqual([]);
      allowed.close();
      await client.dispose();
    });

    it('allows a type-specific subscribe scope only with those types named', async () => {
      const client = wsClient(app.url, { connectionParams: { 'x-api-key': KEYS.typed } });
      const topic = 'orders';
      const named = subscribe<{ events: { type: string } }>(client, EVENTS, { t: topic, types: ['order.created'] });
      const all = subscribe<unknown>(client, EVENTS, { t: topic });
      await waitFor(() => all.errors.length > 0, 5000, 'refusal');
      expect(JSON.stringify(all.errors)).toContain('FORBIDDEN');
      await waitFor(() => (app.services.groups.stats().find((s) => s.topic === topic)?.subscribers ?? 0) >= 1, 5000, 'typed subscription');
      await gql(app.url, PUBLISH, { t: topic, type: 'order.created' }, as('publisher'));
      expect((await named.waitFor(1))[0]!.events.type).toBe('order.created');
      named.close();
      await client.dispose();
    });

    it('keeps deadLettered for admin', async () => {
      const reader = wsClient(app.url, { connectionParams: { 'x-api-key': KEYS.reader } });
      const denied = subscribe<unknown>(reader, 'subscription { deadLettered { id } }');
      await waitFor(() => denied.errors.length > 0, 5000, 'refusal');
      expect(JSON.stringify(denied.errors)).toContain('FORBIDDEN');
      await reader.dispose();
      const admin = wsClient(app.url, { connectionParams: { authorization: `Bearer ${await token('admin')}` } });
      const allowed = subscribe<{ deadLettered: { id: string } }>(admin, 'subscription { deadLettered { id } }');
      const row = await app.services.deadLetters.record({ consumer: 'audit', event: makeEvent({ topic: 'orders' }), error: 'x', attempts: 1 });
      // Announced again until the subscription, registered asynchronously, has received it.
      await waitFor(
        () => {
          if (allowed.received.length === 0) app.services.deadLetterBus.publish(row);
          return allowed.received.length > 0;
        },
        5000,
        'the dead letter delivered to admin',
      );
      expect(allowed.received[0]!.deadLettered.id).toBe(String(row.id));
      expect(allowed.errors).toEqual([]);
      allowed.close();
      await admin.dispose();
    });
  });
});

describe('with no auth configured', () => {
  it('runs open and warns at start', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const app = await startTestApp({ logger });
    try {
      expect(lines.some((l) => l.level === 40 && /authorization is off/.test(l.msg))).toBe(true);
      const result = await gql(app.url, PUBLISH, { t: uniqueName('open'), type: 'a' });
      expect(result.errors).toBeUndefined();
    } finally {
      await app.dispose();
    }
  });
});
