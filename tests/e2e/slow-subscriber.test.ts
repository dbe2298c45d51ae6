import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { retainedArrayBuffers } from '../helpers/memory.js';
import { scrapeMetrics } from '../helpers/metrics.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';

type App = Awaited<ReturnType<typeof startTestApp>>;

const EVENTS = 6000;
const BLOB = 'x'.repeat(4000);

describe('a WebSocket subscriber that stops reading', () => {
  let app: App;
  beforeAll(async () => {
    // Default bounds: 1,000 events or 4 MiB per subscriber. The memory broker keeps only a few
    // events for resuming subscribers, so that what is measured is what is held for the slow one.
    app = await startTestApp({ env: { MEMORY_RETAIN_EVENTS: '100' } });
  });
  afterAll(async () => app?.dispose());

  it('is disconnected with 1008 and a reason past its bound, while others get everything and memory stays flat', async () => {
    const topic = uniqueName('slow');
    const query = `subscription($t: String!) { events(topic: $t) { id data } }`;

    // The slow client: subscribes, then its socket stops reading.
    const slow = new WebSocket(app.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const slowClosed = new Promise<{ code: number; reason: string }>((resolve) =>
      slow.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    let slowReceived = 0;
    let acknowledged = false;
    slow.on('message', (data) => {
      const type = (JSON.parse(String(data)) as { type: string }).type;
      if (type === 'connection_ack') acknowledged = true;
      if (type === 'next') slowReceived++;
    });
    await new Promise((resolve) => slow.once('open', resolve));
    slow.send(JSON.stringify({ type: 'connection_init' }));
    await waitFor(() => acknowledged, 2000, 'connection_ack');
    slow.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query, variables: { t: topic } } }));

    // A well-behaved client on another connection.
    const client = wsClient(app.url);
    const fast = subscribe<{ events: { id: string } }>(client, query, { t: topic });
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 2), 5000, 'both subscribed');
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    const retainedBefore = retainedArrayBuffers();
    for (let i = 0; i < EVENTS; i += 100) {
      const inputs = Array.from({ length: 100 }, (_, j) => ({ topic, type: 'bulk.item', data: { n: i + j, blob: BLOB } }));
      const result = await gql(app.url, `mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { outboxId } }`, { inputs });
      expect(result.errors).toBeUndefined();
    }
    // ~24 MB went out to each subscriber; the fast one reads it all.
    await fast.waitFor(EVENTS, 60_000);
    // Measured while the slow client still is not reading: what the process holds for it now.
    const heldBytes = retainedArrayBuffers() - retainedBefore;
    // Without the bound the server would hold most of the ~24 MB for the slow client.
    expect(heldBytes).toBeLessThan(12 * 1024 * 1024);

    // The slow one reads again: first what was queued before the cut, then the close frame.
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slowClosed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/subscriber too slow/);
    expect(slowReceived).toBeLessThan(EVENTS);
    expect(fast.received).toHaveLength(EVENTS);
    expect(fast.errors).toEqual([]);
    // Its subscription is gone; the fast one's is still live.
    await waitFor(() => app.services.groups.stats().find((s) => s.topic === topic && s.subscribers === 1), 5000, 'slow subscriber released');
    // Counted once, as a WebSocket cut off (the socket closed; its subscription did not fail on its own).
    const metrics = await scrapeMetrics(app.url);
    expect(metrics.value('gateway_subscribers_too_slow_total', { transport: 'websocket' })).toBe(1);
    expect(metrics.value('gateway_subscribers_too_slow_total', { transport: 'sse' })).toBe(0);
    fast.close();
    await client.dispose();
  }, 120_000);
});
