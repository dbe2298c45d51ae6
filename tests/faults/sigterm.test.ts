import { createClient } from 'graphql-ws';
import { describe, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { type GatewayProcess, GatewayScope, refusesConnections } from '../helpers/gateway-process.js';
import { brokerState, eventInput, publishEvents, readStore } from '../helpers/publish-stream.js';
import { openSse, type SseStream } from '../helpers/subscriptions.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

const SUBSCRIPTION = `subscription($t: String!) { events(topic: $t) { id } }`;
/** The exit must come well inside STOP_TIMEOUT_MS (25 s), after which main.ts exits 1 anyway. */
const EXIT_BOUND_MS = 15_000;

/** A graphql-ws subscriber that remembers how its socket was closed. */
function wsSubscriber(url: string, topic: string) {
  const ids: string[] = [];
  let closeCode: number | undefined;
  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    on: { closed: (event) => (closeCode = (event as { code: number }).code) },
  });
  client.subscribe<{ events: { id: string } }>(
    { query: SUBSCRIPTION, variables: { t: topic } },
    { next: (result) => void (result.data && ids.push(result.data.events.id)), error: () => undefined, complete: () => undefined },
  );
  return {
    ids,
    closed: () => closeCode,
    dispose: () => client.dispose(),
  };
}

/** A GraphQL-over-SSE subscriber: `ended` settles when the server ends the response. */
function sseSubscriber(url: string, topic: string) {
  const ids: string[] = [];
  const stream = openSse(url, { query: SUBSCRIPTION, variables: { t: topic } }, {}, (frame) => {
    const payload = JSON.parse(frame.data) as { data?: { events: { id: string } } };
    if (payload.data) ids.push(payload.data.events.id);
  });
  let opened: SseStream | undefined;
  let refused = false;
  stream.then(
    (s) => (opened = s),
    () => (refused = true),
  );
  // Closing before the response came still aborts it, once it comes.
  return {
    ids,
    ended: () => (refused ? 'failed' : opened?.ended()),
    close: () =>
      void stream.then(
        (s) => s.close(),
        () => undefined,
      ),
  };
}

/**
 * Scenario 7: SIGTERM while a relay batch and slow webhook calls are in flight and a graphql-ws
 * and an SSE subscription are open. The gateway stops accepting connections at once, ends both
 * subscriptions cleanly (WebSocket close 1001/1000, not 1006; the SSE response ends), waits for
 * the handler calls (the webhook answers them after the signal) and the relay batch, and exits 0
 * well within STOP_TIMEOUT_MS. The handled events are recorded processed and are not handed to
 * the webhook again after a restart; every other committed event arrives after it.
 */
describe.concurrent('fault: SIGTERM with work in flight', () => {
  for (const target of targets) {
    it(`[${target.broker}] stops accepting, drains in-flight work, closes subscriptions cleanly, exits 0`, async ({ expect }) => {
      const scope = new GatewayScope();
      const databasePath = scope.database();
      const topic = target.newTopic('sigterm');
      const consumer = target.newConsumer('sigterm');
      const recorder = await scope.recorder();
      const consumers = [{ name: consumer, topic, prefetch: 10, webhook: { url: recorder.url, timeoutMs: 60_000 } }];
      const start = () => scope.start({ broker: target.broker, databasePath, consumers, env: target.env });
      let gateway: GatewayProcess = await start();
      const ws = wsSubscriber(gateway.url, topic);
      const sse = sseSubscriber(gateway.url, topic);
      const committed: string[] = [];
      try {
        // Both subscriptions are live once an event reaches them; publish until one has.
        await waitFor(
          async () => {
            const probe = eventInput(topic, committed.length);
            if (!(await publishEvents(gateway.url, [probe]))) committed.push(probe.id);
            return ws.ids.length > 0 && sse.ids.length > 0;
          },
          60_000,
          'both subscriptions to receive an event',
        );
        await recorder.waitForAll(committed, 60_000, 'the probes at the webhook');

        // Slow handler calls: the webhook holds every call from now on.
        recorder.hold();
        const slow = Array.from({ length: 5 }, (_, i) => eventInput(topic, 1000 + i));
        for (const event of slow) expect(await publishEvents(gateway.url, [event])).toBeNull();
        committed.push(...slow.map((e) => e.id));
        await waitFor(() => recorder.inFlight > 0, 30_000, 'a webhook call in flight');
        // Where the broker keeps what it took, a burst leaves the relay a batch in flight too (on
        // a broker that keeps nothing, events waiting in it are gone with the process).
        if (target.features.persistent) {
          const burst = Array.from({ length: 200 }, (_, i) => eventInput(topic, 2000 + i));
          expect(await publishEvents(gateway.url, burst)).toBeNull();
          committed.push(...burst.map((e) => e.id));
        }

        const inFlight = [...recorder.pending];
        const exit = gateway.terminate(EXIT_BOUND_MS);
        await waitFor(() => refusesConnections(gateway.port), 5000, 'new connections to be refused');
        await waitFor(() => ws.closed() !== undefined && sse.ended() !== undefined, 10_000, 'both subscriptions to end').catch((e: Error) => {
          throw new Error(`${e.message} (ws ${ws.closed()}, sse ${sse.ended()})`);
        });
        // The handler calls are still held by the recorder: the process waits for them.
        expect(gateway.running).toBe(true);
        recorder.release();
        const { code, ms } = await exit;
        const leftClaimed = readStore(
          databasePath,
          (db) => db.prepare(`select count(claimed_by) from outbox where status = 'PENDING'`).pluck().get() as number,
        );
        const processed = readStore(databasePath, (db) =>
          db
            .prepare(`select event_id from processed_messages where consumer = ? and event_id in (select value from json_each(?))`)
            .pluck()
            .all(consumer, JSON.stringify(inFlight)),
        );

        // Started again on the same database, the gateway delivers whatever was still to come.
        gateway = await start();
        await recorder.waitForAll(committed, 90_000);
        await waitFor(async () => (await brokerState(gateway.url)).pendingEvents === 0, 30_000, 'an empty outbox');
        const counts = tally(committed, recorder);
        reportFault(
          'sigterm',
          target.broker,
          counts,
          `exit ${code} after ${ms} ms, handler calls in flight ${inFlight.length}, WS close ${ws.closed()}, SSE ${sse.ended()}, rows left claimed ${leftClaimed}`,
        );

        // terminate() itself fails past EXIT_BOUND_MS.
        expect(code).toBe(0);
        expect([1000, 1001]).toContain(ws.closed());
        expect(sse.ended()).toBe('ended');
        // The held calls were answered after the signal, and recorded processed before the exit.
        expect(inFlight.filter((id) => !recorder.finished.has(id))).toEqual([]);
        expect([...processed].sort()).toEqual([...inFlight].sort());
        // The relay settled its batch instead of leaving rows claimed until the lease ran out.
        expect(leftClaimed).toBe(0);
        expect(counts.lostIds).toEqual([]);
        // Handled once: the restart does not hand the drained calls to the webhook again.
        expect(inFlight.map((id) => recorder.accepted.get(id))).toEqual(inFlight.map(() => 1));
        expect((await gateway.terminate(EXIT_BOUND_MS)).code).toBe(0);
      } finally {
        recorder.release();
        sse.close();
        await ws.dispose();
        await scope.dispose();
      }
    }, 240_000);
  }
});
