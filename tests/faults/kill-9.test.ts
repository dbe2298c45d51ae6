import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { type GatewayProcess, GatewayScope } from '../helpers/gateway-process.js';
import { brokerState, eventInput, publishEvents, PublishStream, readStore } from '../helpers/publish-stream.js';
import { faultTargets } from './targets.js';

const targets = await faultTargets();

/** Deliveries one gateway process handles at once. */
const PREFETCH = 10;

/** Resolves as soon as the relay holds a claim on some outbox row (read from another connection). */
async function relayHoldsClaim(databasePath: string, timeoutMs: number): Promise<void> {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  const claimed = db.prepare(`select exists(select 1 from outbox where status = 'PENDING' and claimed_by is not null)`).pluck();
  try {
    const deadline = Date.now() + timeoutMs;
    // A claim lasts as long as one publish round trip: look without pausing between checks.
    while (!claimed.get()) {
      if (Date.now() > deadline) throw new Error(`the relay claimed nothing within ${timeoutMs} ms`);
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    db.close();
  }
}

/**
 * Scenario 1: `kill -9` the gateway while its relay holds claimed rows of a steady stream, start
 * it again on the same database: every committed event reaches the durable consumer, and the
 * idempotent consumer handles each id once (only handler calls cut off by the kill run again).
 * Brokers differ, so their tests run side by side.
 */
describe.concurrent('fault: kill -9 mid-relay', () => {
  for (const target of targets) {
    // A broker that keeps nothing across a process kill cannot promise this.
    it.runIf(target.features.persistent && target.features.durableConsumers)(`[${target.broker}] every committed event arrives after a restart on the same database`, async ({ expect }) => {
      const scope = new GatewayScope();
      const databasePath = scope.database();
      const topic = target.name('kill', 'topic');
      const consumer = target.name('kill', 'consumer');
      const recorder = await scope.recorder();
      const consumers = [{ name: consumer, topic, prefetch: PREFETCH, webhook: { url: recorder.url }, backoff: { initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 } }];
      const gatewayOn = () => scope.start({ broker: target.broker, databasePath, consumers, env: target.env });
      let current: GatewayProcess | undefined = await gatewayOn();
      const stream = new PublishStream({ target: () => current?.url, topic, count: 1000, perSecond: 40 });
      try {
        await waitFor(() => recorder.accepted.size >= 40, 60_000, 'the stream to reach the webhook');
        // A burst gives the relay a large batch to claim; the kill comes while it holds a claim.
        const burst = Array.from({ length: 150 }, (_, i) => eventInput(topic, 10_000 + i));
        expect(await publishEvents(current.url, burst)).toBeNull();
        const killed = current;
        current = undefined;
        await relayHoldsClaim(databasePath, 10_000);
        await killed.kill();
        const atKill = readStore(databasePath, (db) =>
          db.prepare(`select count(*) as pending, count(claimed_by) as claimed from outbox where status = 'PENDING'`).get() as { pending: number; claimed: number },
        );
        expect(atKill.claimed).toBeGreaterThan(0);

        current = await gatewayOn();
        await stream.waitForCommitted(stream.committed.length + 40, 30_000);
        await stream.stop();
        const committed = [...stream.committed, ...burst.map((e) => e.id)];
        // Rows the dead relay had claimed wait out its lease (30 s) before this relay takes them.
        await recorder.waitForAll(committed, 120_000);
        await waitFor(async () => (await brokerState(current!.url)).pendingEvents === 0, 30_000, 'an empty outbox');

        const counts = tally(committed, recorder);
        const duplicates = counts.received - counts.unique;
        reportFault('kill-9', target.broker, counts, `pending at kill ${atKill.pending}, claimed at kill ${atKill.claimed}, duplicate deliveries ${duplicates}`);
        expect(counts.lostIds).toEqual([]);
        expect(stream.refused).toEqual([]);
        // Nothing arrives that nobody published.
        const attempted = new Set([...stream.attempted, ...burst.map((e) => e.id)]);
        expect([...recorder.accepted.keys()].filter((id) => !attempted.has(id))).toEqual([]);
        // Each id is recorded processed once; the webhook sees an id again only for a handler
        // call the kill cut off (at most one process's prefetch), never for relay re-publishes
        // or broker redeliveries of events already handled.
        const processed = readStore(databasePath, (db) =>
          db.prepare(`select count(*) as n, count(distinct event_id) as ids from processed_messages where consumer = ?`).get(consumer) as { n: number; ids: number },
        );
        expect(processed).toEqual({ n: counts.unique, ids: counts.unique });
        expect(duplicates).toBeLessThanOrEqual(PREFETCH);
        expect((await current.terminate(20_000)).code).toBe(0);
      } finally {
        await stream.stop();
        await scope.dispose();
      }
    }, 240_000);
  }
});
