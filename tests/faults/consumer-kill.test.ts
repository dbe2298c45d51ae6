import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { GatewayScope, type GatewayProcess } from '../helpers/gateway-process.js';
import { eventInput, publishEvents, readStore } from '../helpers/publish-stream.js';
import { reportFault, tally } from './fault-tally.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

/** Handler calls at once; the broker holds up to twice as many for the process. */
const PREFETCH = 10;
const EVENTS = 400;

/**
 * Scenario: `kill -9` a gateway whose durable consumer has deliveries in every stage at once
 * (waiting in its window, at the webhook, answered and waiting for their processed-message
 * record to be committed, waiting for the broker to be told). Started again on the same
 * database, it delivers every event, and no event is recorded as processed unless its webhook
 * answered 2xx.
 */
describe.concurrent('fault: kill -9 of a consumer with batched deliveries', () => {
  for (const target of targets) {
    it.runIf(target.features.persistent && target.features.durableConsumers)(
      `[${target.broker}] every event is delivered after the restart, none recorded without a 2xx`,
      async ({ expect }) => {
        const scope = new GatewayScope();
        const databasePath = scope.database();
        const topic = target.newTopic('ckill');
        const consumer = target.newConsumer('ckill');
        const recorder = await scope.recorder();
        // Slow enough that the window stays full; every fifth call fails once, so retries are in flight too.
        recorder.answer = (id, call) => ({ delayMs: 5, status: call === 1 && id.endsWith('5') ? 503 : 200 });
        const consumers = [
          { name: consumer, topic, prefetch: PREFETCH, webhook: { url: recorder.url }, backoff: { initialMs: 100, maxMs: 500, multiplier: 2, jitter: 0 } },
        ];
        const gatewayOn = () => scope.start({ broker: target.broker, databasePath, consumers, env: target.env });
        let current: GatewayProcess = await gatewayOn();
        try {
          const events = Array.from({ length: EVENTS }, (_, i) => eventInput(topic, i, { key: `k${i % 8}` }));
          for (let i = 0; i < events.length; i += 50) expect(await publishEvents(current.url, events.slice(i, i + 50))).toBeNull();
          await waitFor(() => recorder.finished.size >= EVENTS / 4, 60_000, 'a quarter of the events handled');
          const inFlightAtKill = recorder.inFlight;
          await current.kill();
          const answeredAtKill = recorder.finished.size;

          // Nothing is recorded for a delivery whose webhook has not answered 2xx (read while dead).
          const recordedAtKill = readStore(
            databasePath,
            (db) => db.prepare(`select event_id from processed_messages where consumer = ?`).pluck().all(consumer) as string[],
          );
          expect(recordedAtKill.filter((id) => !recorder.finished.has(id))).toEqual([]);

          current = await gatewayOn();
          const ids = events.map((e) => e.id);
          await recorder.waitForAll(ids, 120_000);
          await waitFor(
            () =>
              readStore(databasePath, (db) => db.prepare(`select count(*) from processed_messages where consumer = ?`).pluck().get(consumer) as number) >=
              EVENTS,
            60_000,
            'every event recorded as processed',
          );
          const recorded = readStore(
            databasePath,
            (db) => db.prepare(`select event_id from processed_messages where consumer = ?`).pluck().all(consumer) as string[],
          );
          const counts = tally(ids, recorder);
          reportFault(
            'consumer-kill',
            target.broker,
            counts,
            `answered 2xx before the kill ${answeredAtKill}, webhook calls in flight at kill ${inFlightAtKill}, recorded ${recorded.length}, ` +
              `delivered again ${counts.received - counts.unique}`,
          );
          expect(counts.lostIds).toEqual([]);
          expect(new Set(recorded).size).toBe(EVENTS);
          expect(recorded.filter((id) => !recorder.finished.has(id))).toEqual([]);
          // Only deliveries the kill cut off are delivered again: at most one window's worth.
          expect(counts.received - counts.unique).toBeLessThanOrEqual(2 * PREFETCH);
          expect((await current.terminate(20_000)).code).toBe(0);
        } finally {
          await scope.dispose();
        }
      },
      240_000,
    );
  }
});
