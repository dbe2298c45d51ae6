import { afterEach, describe, expect, it } from 'vitest';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { scrapeMetrics, type Scrape } from '../helpers/metrics.js';
import { sseSubscribe, subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const PUBLISH_MANY = `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { outboxId } }`;
const EVENTS = `subscription($t: String!) { events(topic: $t) { id data } }`;

/** Scrapes until `check` passes (store counts are cached for up to 2 s), then returns that scrape. */
async function scrapeUntil(app: App, check: (scrape: Scrape) => boolean, what: string, timeoutMs = 10_000): Promise<Scrape> {
  let last: Scrape | undefined;
  try {
    return await waitFor(
      async () => {
        last = await scrapeMetrics(app.url);
        return check(last) ? last : undefined;
      },
      timeoutMs,
      what,
    );
  } catch (error) {
    const names = last
      ? Object.keys(last.families)
          .filter((n) => n.startsWith('gateway_'))
          .join(', ')
      : 'no scrape';
    throw new Error(`${(error as Error).message} (gateway metrics seen: ${names})`);
  }
}

describe('GET /metrics', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('answers Prometheus text that moves as events flow: outbox, relay, consumer, dead letters, subscriptions, operations', async () => {
    const topic = uniqueName('orders');
    const consumer = uniqueName('billing');
    const app = await startTestApp({
      consumers: [{ name: consumer, topic, maxAttempts: 2, backoff: { initialMs: 10, maxMs: 10, multiplier: 1, jitter: 0 } }],
      handlers: {
        [consumer]: async (event) => {
          if ((event.data as { poison?: boolean }).poison) throw new Error('cannot bill this one');
        },
      },
    });
    cleanups.push(() => app.dispose());

    const before = await scrapeMetrics(app.url);
    expect(before.status).toBe(200);
    expect(before.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    // prom-client's default process metrics, and every family with the help that says what it is.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(before.families[name], name).toBeDefined();
    }
    expect(before.value('gateway_store_up')).toBe(1);
    expect(before.value('gateway_relay_circuit_state', { broker: 'memory', state: 'CLOSED' })).toBe(1);
    expect(before.value('gateway_relay_circuit_state', { broker: 'memory', state: 'OPEN' })).toBe(0);
    expect(before.value('gateway_broker_connected', { broker: 'memory' })).toBe(1);
    expect(before.value('gateway_consumer_processed_total', { consumer })).toBe(0);
    expect(before.value('gateway_subscriptions', { transport: 'websocket' })).toBe(0);
    const published = (s: Scrape) => s.value('gateway_outbox_rows', { status: 'PUBLISHED' }) ?? -1;
    const mutations = (s: Scrape) => s.count('gateway_graphql_operation_duration_seconds', { operation_type: 'mutation' }) ?? 0;

    // One subscriber over WebSocket and one over SSE, held while events flow.
    const client = wsClient(app.url);
    cleanups.push(() => client.dispose());
    const ws = subscribe<{ events: { id: string } }>(client, EVENTS, { t: topic });
    const sse = sseSubscribe<{ events: { id: string } }>(app.url, EVENTS, { t: topic });
    cleanups.push(() => sse.close());
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 2), 5000, 'both subscribed');

    const inputs = [
      ...Array.from({ length: 5 }, (_, n) => ({ topic, type: 'order.created', key: `o-${n}`, data: { n } })),
      { topic, type: 'order.created', key: 'o-poison', data: { poison: true } },
    ];
    expect((await gql(app.url, PUBLISH_MANY, { inputs })).errors).toBeUndefined();
    await ws.waitFor(6);
    await sse.waitFor(6);

    const during = await scrapeUntil(
      app,
      (s) =>
        s.value('gateway_consumer_dead_lettered_total', { consumer }) === 1 &&
        s.value('gateway_dead_letters', { consumer, status: 'DEAD' }) === 1 &&
        published(s) >= published(before) + 6,
      'the consumer to dead-letter the poison event and the outbox counts to follow',
    );
    expect(during.value('gateway_relay_published_total')).toBeGreaterThanOrEqual((before.value('gateway_relay_published_total') ?? 0) + 6);
    expect(during.value('gateway_relay_publish_failures_total')).toBe(0);
    expect(during.count('gateway_relay_commit_to_confirm_seconds')).toBeGreaterThanOrEqual((before.count('gateway_relay_commit_to_confirm_seconds') ?? 0) + 6);
    expect(during.value('gateway_outbox_rows', { status: 'PENDING' })).toBe(0);
    expect(during.value('gateway_outbox_rows', { status: 'FAILED' })).toBe(0);
    expect(during.value('gateway_outbox_oldest_pending_age_seconds')).toBe(0);
    expect(during.value('gateway_consumer_processed_total', { consumer })).toBe(5);
    expect(during.value('gateway_consumer_retried_total', { consumer })).toBe(1);
    expect(during.value('gateway_consumer_lag_messages', { consumer })).toBe(0);
    expect(during.value('gateway_connections', { transport: 'websocket' })).toBe(1);
    expect(during.value('gateway_connections', { transport: 'sse' })).toBe(1);
    expect(during.value('gateway_subscriptions', { transport: 'websocket' })).toBe(1);
    expect(during.value('gateway_subscriptions', { transport: 'sse' })).toBe(1);
    expect(during.value('gateway_subscription_groups')).toBe(1);
    expect(during.value('gateway_subscription_topics')).toBe(1);
    // One execution per event for both subscribers, two deliveries.
    expect(during.value('gateway_subscription_executions_total')).toBe(6);
    expect(during.value('gateway_subscription_deliveries_total')).toBe(12);
    expect(mutations(during)).toBe(mutations(before) + 1);
    expect(during.count('gateway_graphql_operation_duration_seconds', { operation_type: 'subscription' })).toBe(2);
    expect(during.value('gateway_subscribers_too_slow_total', { transport: 'sse' })).toBe(0);

    // Subscribers that leave are counted out, whichever way they leave.
    ws.close();
    await sse.close();
    await scrapeUntil(
      app,
      (s) =>
        s.value('gateway_subscriptions', { transport: 'websocket' }) === 0 &&
        s.value('gateway_subscriptions', { transport: 'sse' }) === 0 &&
        s.value('gateway_connections', { transport: 'sse' }) === 0,
      'the subscriptions to end',
    );
  });

  it('counts an SSE subscriber cut off as too slow once, and no longer as live', async () => {
    // A bound of one event: a batch the broker hands over at once overflows it before the response can take any.
    const app = await startTestApp({ env: { SUBSCRIBER_BUFFER: '1' } });
    cleanups.push(() => app.dispose());
    const topic = uniqueName('burst');
    const sse = sseSubscribe<{ events: { id: string } }>(app.url, EVENTS, { t: topic });
    cleanups.push(() => sse.close());
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic), 5000, 'subscribed');
    const inputs = Array.from({ length: 10 }, (_, n) => ({ topic, type: 'bulk.item', data: { n } }));
    expect((await gql(app.url, PUBLISH_MANY, { inputs })).errors).toBeUndefined();
    await waitFor(() => sse.errors.length > 0, 5000, 'the subscriber to be cut off');
    expect(sse.errors).toEqual([expect.objectContaining({ extensions: { code: 'SUBSCRIBER_TOO_SLOW' } })]);
    const after = await scrapeUntil(app, (s) => s.value('gateway_subscriptions', { transport: 'sse' }) === 0, 'the cut-off subscription to end');
    expect(after.value('gateway_subscribers_too_slow_total', { transport: 'sse' })).toBe(1);
    expect(after.value('gateway_subscribers_too_slow_total', { transport: 'websocket' })).toBe(0);
  });

  it('still answers while the store fails or hangs: what it can, with gateway_store_up 0', async () => {
    const app = await startTestApp();
    cleanups.push(() => app.dispose());
    const { outbox } = app.store;
    const summary = outbox.summary;
    expect((await scrapeMetrics(app.url)).value('gateway_outbox_rows', { status: 'PENDING' })).toBe(0);
    try {
      (outbox as { summary: typeof summary }).summary = () => Promise.reject(new Error('disk I/O error'));
      const failing = await scrapeUntil(app, (s) => s.value('gateway_store_up') === 0, 'the failing store to show');
      expect(failing.status).toBe(200);
      expect(failing.families['gateway_outbox_rows']?.data ?? []).toEqual([]);
      expect(failing.value('gateway_relay_published_total')).toBe(0);
      expect(failing.families['process_cpu_user_seconds_total']).toBeDefined();

      // A store that never answers holds a scrape up by its timeout (2 s), not for ever.
      (outbox as { summary: typeof summary }).summary = () => new Promise(() => undefined);
      await new Promise((r) => setTimeout(r, 2100)); // the cached failure expires
      const started = Date.now();
      const hanging = await scrapeMetrics(app.url);
      expect(Date.now() - started).toBeLessThan(4000);
      expect(hanging.status).toBe(200);
      expect(hanging.value('gateway_store_up')).toBe(0);
    } finally {
      (outbox as { summary: typeof summary }).summary = summary;
    }
    // The hung reading is given up after 10 s; the next one finds the store back.
    await scrapeUntil(
      app,
      (s) => s.value('gateway_store_up') === 1 && s.value('gateway_outbox_rows', { status: 'PENDING' }) === 0,
      'the store to be read again',
      15_000,
    );
  }, 30_000);

  it('is not served with METRICS=false', async () => {
    const app = await startTestApp({ env: { METRICS: 'false' } });
    cleanups.push(() => app.dispose());
    const response = await fetch(app.url.replace(/\/graphql$/, '/metrics'));
    expect(response.status).toBe(404);
  });
});
