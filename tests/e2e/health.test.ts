import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../src/server/operations-endpoints.js';
import { gql, startTestApp } from '../helpers/app.js';
import { FlakyBroker } from '../helpers/flaky-broker.js';
import { uniqueName } from '../helpers/events.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

describe('/health and /ready', () => {
  let app: App;
  let broker: FlakyBroker;
  let base: string;
  const get = async (path: string) => {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    broker = new FlakyBroker();
    app = await startTestApp({ broker });
    base = app.url.replace(/\/graphql$/, '');
  });
  afterAll(async () => app?.dispose());

  it('reports every part working', async () => {
    const health = await get('/health');
    expect(health.status).toBe(200);
    expect(health.body as unknown as HealthReport).toEqual({
      status: 'ok',
      store: { dialect: 'sqlite', writable: true, error: null },
      broker: { kind: 'flaky', connected: true, circuit: 'CLOSED', lastError: null },
    });
    expect(await get('/ready')).toEqual({ status: 200, body: { ready: true } });
  });

  it('stays ready while the broker is down (the outbox takes the publishes), and says so in /health', async () => {
    broker.down = true;
    try {
      expect((await get('/ready')).status).toBe(200);
      const published = await gql(app.url, `mutation { publishEvent(input: { topic: "${uniqueName('h')}", type: "a", data: 1 }) { outboxId } }`);
      expect(published.errors).toBeUndefined();
      const health = await get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'degraded', broker: { connected: false, lastError: 'broker is down' } });
    } finally {
      broker.down = false;
    }
  });

  it('is unready while the store does not take writes; /health stays 200 and names the store', async () => {
    const ping = app.store.ping;
    (app.store as { ping: () => Promise<void> }).ping = () => Promise.reject(new Error('disk I/O error'));
    try {
      const ready = await get('/ready');
      expect(ready.status).toBe(503);
      expect(ready.body['reason']).toContain('disk I/O error');
      const health = await get('/health');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: 'degraded', store: { writable: false, error: 'disk I/O error' } });
    } finally {
      (app.store as { ping: () => Promise<void> }).ping = ping;
    }
    expect((await get('/ready')).status).toBe(200);
  });
});
