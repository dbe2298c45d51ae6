import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName } from '../helpers/events.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const LISTED = 'https://app.example.com';
const EVIL = 'https://evil.example';

/** A gateway in open mode (no auth), as a developer runs it on 127.0.0.1. */
describe('no cross-site access by default', () => {
  let app: App;
  const pendingFor = async (topic: string) => (await app.services.outbox.list({}, { limit: 500, inverted: false })).filter((row) => row.topic === topic).length;

  beforeAll(async () => {
    app = await startTestApp({ env: { CORS_ORIGINS: LISTED } });
  });
  afterAll(async () => app?.dispose());

  const preflight = (origin: string) =>
    fetch(app.url, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  it('answers a preflight from an unlisted origin without allow headers', async () => {
    const response = await preflight(EVIL);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    expect(response.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('answers a preflight from a listed origin with that origin', async () => {
    const response = await preflight(LISTED);
    expect(response.headers.get('access-control-allow-origin')).toBe(LISTED);
    expect(response.headers.get('access-control-allow-methods')).toContain('POST');
    expect(response.headers.get('access-control-allow-headers')).toContain('content-type');
  });

  it('lets a listed origin publish, and shows it the response', async () => {
    const topic = uniqueName('cors');
    const result = await gql(app.url, `mutation { publishEvent(input: { topic: "${topic}", type: "a", data: 1 }) { outboxId } }`, undefined, {
      origin: LISTED,
    });
    expect(result.errors).toBeUndefined();
    expect(await pendingFor(topic)).toBe(1);
  });

  it('refuses a JSON mutation from an unlisted origin and writes nothing', async () => {
    const topic = uniqueName('cors');
    const result = await gql(app.url, `mutation { publishEvent(input: { topic: "${topic}", type: "a", data: 1 }) { outboxId } }`, undefined, {
      origin: EVIL,
    });
    expect(result.status).toBe(403);
    expect(result.errors?.[0]?.extensions?.['code']).toBe('CROSS_SITE_FORBIDDEN');
    expect(await pendingFor(topic)).toBe(0);
  });

  for (const [name, contentType, body] of [
    ['form-encoded', 'application/x-www-form-urlencoded', (q: string) => new URLSearchParams({ query: q }).toString()],
    ['text/plain', 'text/plain', (q: string) => JSON.stringify({ query: q })],
    ['multipart', 'multipart/form-data; boundary=x', (q: string) => `--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n${q}\r\n--x--\r\n`],
  ] as const) {
    it(`refuses a ${name} mutation, even without an Origin, and writes nothing`, async () => {
      const topic = uniqueName('csrf');
      const response = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: body(`mutation { publishEvent(input: { topic: "${topic}", type: "a", data: 1 }) { outboxId } }`),
      });
      expect(response.status).toBe(415);
      const payload = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(payload.errors[0]!.extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(await pendingFor(topic)).toBe(0);
    });
  }

  it('refuses a cross-site GET query (what an <img> or EventSource could send)', async () => {
    const response = await fetch(`${app.url}?query=${encodeURIComponent('{ consumers { name } }')}`, { headers: { origin: EVIL } });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('still serves GraphiQL and its same-origin requests', async () => {
    const page = await fetch(app.url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('graphiql');
    const origin = new URL(app.url).origin;
    const result = await gql(app.url, '{ __typename }', undefined, { origin });
    expect(result.data).toEqual({ __typename: 'Query' });
  });

  const upgrade = (origin: string | undefined) =>
    new Promise<number>((resolve) => {
      const socket = new WebSocket(app.url.replace(/^http/, 'ws'), 'graphql-transport-ws', origin ? { origin } : {});
      socket.once('open', () => {
        socket.close();
        resolve(101);
      });
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('error', () => undefined);
    });

  it('refuses a WebSocket opened by a page on another site', async () => {
    expect(await upgrade(EVIL)).toBe(403);
  });

  it('accepts WebSockets from a listed origin, the same origin, and non-browser clients', async () => {
    expect(await upgrade(LISTED)).toBe(101);
    expect(await upgrade(new URL(app.url).origin)).toBe(101);
    expect(await upgrade(undefined)).toBe(101);
  });
});
