import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { waitFor } from '../helpers/events.js';
import { reportFault, tally } from './fault-tally.js';
import { type GatewayProcess, GatewayScope } from '../helpers/gateway-process.js';
import { brokerState, eventInput, publishEvents, PublishStream, readStore } from '../helpers/publish-stream.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const targets = await gatewayTargets();

/** Deliveries one gateway process handles at once. */
const PREFETCH = 10;
/**
 * Deliveries one process holds unsettled (twice its prefetch, see `ConsumerManager`): what a kill
 * can cut off after the webhook answered and before the broker was told, to be delivered again.
 */
const WINDOW = 2 * PREFETCH;

/**
 * Resolves as soon as the relay holds a claim on some outbox row (read from another connection),
 * or on one of `eventIds` when given.
 */
async function relayHoldsClaim(databasePath: string, timeoutMs: number, eventIds?: readonly string[]): Promise<void> {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  const claimed = db
    .prepare(
      `select exists(select 1 from outbox where status = 'PENDING' and claimed_by is not null
         and (@ids is null or event_id in (select value from json_each(@ids))))`,
    )
    .pluck();
  const ids = eventIds ? JSON.stringify(eventIds) : null;
  try {
    const deadline = Date.now() + timeoutMs;
    // A claim lasts as long as one publish round trip: look without pausing between checks.
    while (!claimed.get({ ids })) {
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
    it.runIf(target.features.persistent && target.features.durableConsumers)(
      `[${target.broker}] every committed event arrives after a restart on the same database`,
      async ({ expect }) => {
        const scope = new GatewayScope();
        const databasePath = scope.database();
        const topic = target.newTopic('kill');
        const consumer = target.newConsumer('kill');
        const recorder = await scope.recorder();
        const consumers = [
          { name: consumer, topic, prefetch: PREFETCH, webhook: { url: recorder.url }, backoff: { initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 } },
        ];
        // Small relay batches: the burst below takes several round trips, so the kill finds claims held.
        const gatewayOn = () => scope.start({ broker: target.broker, databasePath, consumers, env: { ...target.env, RELAY_BATCH_SIZE: '16' } });
        let current: GatewayProcess | undefined = await gatewayOn();
        const stream = new PublishStream({ target: () => current?.url, topic, count: 1000, perSecond: 40 });
        try {
          await waitFor(() => recorder.accepted.size >= 40, 60_000, 'the stream to reach the webhook');
          // A burst gives the relay a large batch; the kill comes while it holds a claim. The relay
          // may confirm the burst before its mutation's answer is back here, so the watch starts first.
          // Seeing its rows claimed proves the burst committed, whether or not its answer got back.
          const burst = Array.from({ length: 150 }, (_, i) => eventInput(topic, 10_000 + i));
          const claimSeen = relayHoldsClaim(
            databasePath,
            10_000,
            burst.map((e) => e.id),
          );
          const burstAnswer = publishEvents(current.url, burst).catch(() => 'unanswered' as const);
          // A refused burst would leave nothing to see claimed: say so instead of timing out.
          await Promise.race([
            claimSeen,
            burstAnswer.then((answer) =>
              answer === null || answer === 'unanswered' ? claimSeen : Promise.reject(new Error(`burst refused: ${JSON.stringify(answer)}`)),
            ),
          ]);
          const killed = current;
          current = undefined;
          await killed.kill();
          expect(await burstAnswer).not.toEqual(expect.objectContaining({ code: expect.anything() }));
          const atKill = readStore(
            databasePath,
            (db) =>
              db.prepare(`select count(*) as pending, count(claimed_by) as claimed from outbox where status = 'PENDING'`).get() as {
                pending: number;
                claimed: number;
              },
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
          reportFault(
            'kill-9',
            target.broker,
            counts,
            `pending at kill ${atKill.pending}, claimed at kill ${atKill.claimed}, duplicate deliveries ${duplicates}`,
          );
          expect(counts.lostIds).toEqual([]);
          expect(stream.refused).toEqual([]);
          // Nothing arrives that nobody published.
          const attempted = new Set([...stream.attempted, ...burst.map((e) => e.id)]);
          expect([...recorder.accepted.keys()].filter((id) => !attempted.has(id))).toEqual([]);
          // Each id is recorded processed once; the webhook sees an id again only for a delivery
          // the kill cut off (at most one process's window), never for relay re-publishes or broker
          // redeliveries of events already handled.
          const processed = await processedOnce(databasePath, consumer, committed);
          expect(processed).toEqual({ n: counts.sent, ids: counts.sent });
          expect(duplicates).toBeLessThanOrEqual(WINDOW);
          expect((await current.terminate(20_000)).code).toBe(0);
        } finally {
          await stream.stop();
          await scope.dispose();
        }
      },
      240_000,
    );
  }
});

/**
 * The processed-message records of `consumer` for the answered ids, once they cover all of them: a
 * delivery the kill cut off after its webhook answered is handled again once the broker redelivers
 * it (JetStream waits out its ack_wait), and only then recorded. Mutations the kill left without an
 * answer may have committed too, and are then handled as well: they are left out here, since
 * nothing says whether they committed (their deliveries are checked against `attempted`).
 */
async function processedOnce(databasePath: string, consumer: string, answered: readonly string[]): Promise<{ n: number; ids: number }> {
  const read = () =>
    readStore(
      databasePath,
      (db) =>
        db
          .prepare(
            `select count(*) as n, count(distinct event_id) as ids from processed_messages
             where consumer = ? and event_id in (select value from json_each(?))`,
          )
          .get(consumer, JSON.stringify(answered)) as { n: number; ids: number },
    );
  const unique = new Set(answered).size;
  await waitFor(() => read().ids >= unique, 60_000, `${unique} processed-message records`).catch(() => undefined);
  return read();
}

/** Publishers that send mutations at once, each waiting for its answer before the next. */
const PUBLISHERS = 32;

/**
 * Scenario 1b: the same kill with 32 publishers at once, so that mutations are group-committed
 * when the process dies. Every mutation that got an answer is published after the restart and
 * handled once after the consumer's dedupe; a broker that drops re-published ids holds it once.
 */
describe.concurrent('fault: kill -9 under 32 concurrent publishers', () => {
  for (const target of targets) {
    it.runIf(target.features.persistent && target.features.durableConsumers)(
      `[${target.broker}] every answered mutation is published after the restart, handled once`,
      async ({ expect }) => {
        const scope = new GatewayScope();
        const databasePath = scope.database();
        const topic = target.newTopic('kill32');
        const consumer = target.newConsumer('kill32');
        const recorder = await scope.recorder();
        const tap = await target.tap?.(topic);
        const consumers = [{ name: consumer, topic, prefetch: PREFETCH, webhook: { url: recorder.url } }];
        const gatewayOn = () => scope.start({ broker: target.broker, databasePath, consumers, env: target.env });
        let current: GatewayProcess | undefined = await gatewayOn();
        const streams = Array.from({ length: PUBLISHERS }, () => new PublishStream({ target: () => current?.url, topic, count: 100_000, perSecond: 10 }));
        const committed = () => streams.flatMap((s) => s.committed);
        try {
          await waitFor(() => committed().length >= 400, 60_000, '400 committed mutations');
          await relayHoldsClaim(databasePath, 10_000);
          const killed = current;
          current = undefined;
          await killed.kill();
          const atKill = committed().length;
          current = await gatewayOn();
          await waitFor(() => committed().length >= atKill + 300, 60_000, '300 more committed mutations after the restart');
          await Promise.all(streams.map((s) => s.stop()));
          const ids = committed();
          // Rows the dead relay had claimed wait out its lease (30 s) before this relay takes them.
          await recorder.waitForAll(ids, 120_000);
          await waitFor(async () => (await brokerState(current!.url)).pendingEvents === 0, 30_000, 'an empty outbox');

          const counts = tally(ids, recorder);
          const copies = tap ? await tap.collect(60_000) : undefined;
          const twice = copies ? [...copies.values()].filter((n) => n > 1).length : 0;
          const processed = await processedOnce(databasePath, consumer, ids);
          reportFault(
            'kill-9-32-publishers',
            target.broker,
            counts,
            `answered before the kill ${atKill}, unanswered ${streams.reduce((n, s) => n + s.unanswered.length, 0)}, ` +
              `handled once ${processed.ids}, duplicate deliveries ${counts.received - counts.unique}` +
              (copies ? `, ids the relays sent twice ${twice}` : ''),
          );
          expect(counts.lostIds).toEqual([]);
          expect(streams.flatMap((s) => s.refused)).toEqual([]);
          const attempted = new Set(streams.flatMap((s) => s.attempted));
          expect([...recorder.accepted.keys()].filter((id) => !attempted.has(id))).toEqual([]);
          // After the consumer's dedupe every event is handled exactly once.
          expect(processed).toEqual({ n: counts.sent, ids: counts.sent });
          expect(counts.received - counts.unique).toBeLessThanOrEqual(WINDOW);
          expect((await current.terminate(20_000)).code).toBe(0);
        } finally {
          await Promise.all(streams.map((s) => s.stop()));
          await tap?.close();
          await scope.dispose();
        }
      },
      300_000,
    );
  }
});
