import { describe, it } from 'vitest';
import { gql } from '../helpers/app.js';
import { waitFor } from '../helpers/events.js';
import { type GatewayProcess, GatewayScope } from '../helpers/gateway-process.js';
import { requireBroker } from '../helpers/brokers.js';
import { createTestDatabase, POSTGRES_HOST, POSTGRES_PORT, withConnection } from '../helpers/postgres.js';
import { brokerState, eventInput, publishEvents, PublishStream } from '../helpers/publish-stream.js';
import { subscribe, wsClient } from '../helpers/subscriptions.js';
import { reportFault, tally } from './fault-tally.js';
import { gatewayTargets } from '../targets/gateway-targets.js';

const postgres = await requireBroker('PostgreSQL', POSTGRES_HOST, POSTGRES_PORT);
const targets = postgres ? await gatewayTargets() : [];

const INSTANCES = 3;
/** Deliveries one gateway process handles at once (it holds twice as many unsettled). */
const PREFETCH = 10;
/** Short leases, so the rows a killed instance had claimed are taken over within the test. */
const LEASE_MS = 5000;

/**
 * Scale-out: three gateway processes on one PostgreSQL database and one broker, mutations sent to
 * them in turn, one of them SIGKILLed while its relay holds claimed rows and started again. Every
 * committed event reaches the shared durable consumer and is handled once after dedupe; a
 * subscriber on another instance sees every event, whichever instance took its mutation; every
 * instance answers the same consumer figures.
 */
describe('fault: three instances on one PostgreSQL, one killed and restarted', () => {
  for (const target of targets) {
    it.runIf(target.features.sharedConsumers && target.features.persistent)(
      `[${target.broker}] every committed event is handled once, whichever instance took it`,
      async ({ expect }) => {
        const database = await createTestDatabase();
        const scope = new GatewayScope();
        const topic = target.newTopic('multi');
        const consumer = target.newConsumer('multi');
        const recorder = await scope.recorder();
        const consumers = [
          { name: consumer, topic, prefetch: PREFETCH, webhook: { url: recorder.url }, backoff: { initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 } },
        ];
        const env = { ...target.env, DATABASE_URL: database.url, RELAY_LEASE_MS: String(LEASE_MS), RELAY_BATCH_SIZE: '16' };
        const start = () => scope.start({ broker: target.broker, databasePath: scope.database(), consumers, env });
        const instances: (GatewayProcess | undefined)[] = await Promise.all(Array.from({ length: INSTANCES }, start));
        let turn = 0;
        const nextUrl = () => {
          for (let i = 0; i < INSTANCES; i++) {
            const instance = instances[turn++ % INSTANCES];
            if (instance) return instance.url;
          }
          return undefined;
        };
        // A live subscriber on the first instance, which is never killed.
        const client = wsClient(instances[0]!.url);
        const live = subscribe<{ events: { id: string } }>(client, `subscription($t: String!) { events(topic: $t) { id } }`, { t: topic });
        await new Promise((r) => setTimeout(r, 500));
        const stream = new PublishStream({ target: nextUrl, topic, count: 100_000, perSecond: 60 });
        try {
          await waitFor(() => recorder.accepted.size >= 100, 60_000, 'the stream to reach the webhook');
          // Bursts through the instance about to die, so that its relay holds claims when it does:
          // it is killed the moment a poll (on one connection, back to back) sees rows of a burst
          // claimed and not yet published. A relay on a fast broker may publish a whole burst
          // between two polls, so another burst follows when none was seen within 2 s.
          const victim = instances[INSTANCES - 1]!;
          const waves: { ids: string[]; answer: Promise<Awaited<ReturnType<typeof publishEvents>> | 'unanswered'> }[] = [];
          await withConnection(database.url, async (sql) => {
            for (let round = 0; round < 5; round++) {
              const wave = Array.from({ length: 150 }, (_, i) => eventInput(topic, 10_000 + round * 150 + i));
              const ids = wave.map((e) => e.id);
              waves.push({ ids, answer: publishEvents(victim.url, wave).catch(() => 'unanswered' as const) });
              for (const until = Date.now() + 2000; Date.now() < until; ) {
                const [row] = await sql<{ claimed: number }[]>`
                  select count(*)::int as claimed from outbox where status = 'PENDING' and claimed_by is not null and event_id = any(${ids})`;
                if (row!.claimed > 0) return;
              }
            }
            throw new Error("the victim's relay published five bursts of 150 events without a poll seeing one of them claimed");
          });
          instances[INSTANCES - 1] = undefined;
          await victim.kill();
          const claimedAtKill = await withConnection(database.url, async (sql) => {
            const [row] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where status = 'PENDING' and claimed_by is not null`;
            return row!.n;
          });
          const answers = await Promise.all(waves.map((wave) => wave.answer));
          for (const answer of answers) expect(answer).not.toEqual(expect.objectContaining({ code: expect.anything() }));
          // Committed: the bursts answered, and the last one, whose rows were seen claimed (the kill
          // may have cut its answer).
          const burst = waves.filter((_, i) => answers[i] === null || i === waves.length - 1).flatMap((wave) => wave.ids);

          await stream.waitForCommitted(stream.committed.length + 200, 60_000);
          instances[INSTANCES - 1] = await start();
          await stream.waitForCommitted(stream.committed.length + 200, 60_000);
          await stream.stop();

          const committed = [...stream.committed, ...burst];
          // Rows the killed relay had claimed wait out its lease, then another instance takes them.
          await recorder.waitForAll(committed, 120_000);
          await waitFor(async () => (await brokerState(instances[0]!.url)).pendingEvents === 0, 30_000, 'an empty outbox');
          const counts = tally(committed, recorder);
          const processed = await waitFor(
            () =>
              withConnection(database.url, async (sql) => {
                const [row] = await sql<{ n: number; ids: number }[]>`
                select count(*)::int as n, count(distinct event_id)::int as ids from processed_messages where consumer = ${consumer}`;
                return row!.ids >= counts.unique ? row! : undefined;
              }),
            60_000,
            `${counts.unique} processed-message records`,
          );
          await live.waitFor(counts.unique, 30_000).catch(() => undefined);
          const seen = new Set(live.received.map((r) => r.events.id));
          const missingLive = committed.filter((id) => !seen.has(id)).length;
          reportFault(
            'multi-instance',
            target.broker,
            counts,
            `${INSTANCES} instances, claimed at kill ${claimedAtKill}, handled once ${processed.ids}, ` +
              `duplicate deliveries ${counts.received - counts.unique}, subscriber on instance 1 missing ${missingLive}`,
          );
          expect(counts.lostIds).toEqual([]);
          expect(stream.refused).toEqual([]);
          // Handled once after dedupe: one processed record per event, whichever instance got it.
          expect(processed).toEqual({ n: counts.unique, ids: counts.unique });
          // Only deliveries the kill cut off (one process's window) reach the webhook twice.
          expect(counts.received - counts.unique).toBeLessThanOrEqual(2 * PREFETCH);
          // A subscriber on one instance sees what went through the others.
          expect(missingLive).toBe(0);
          // One answer from every instance.
          const figures = await Promise.all(
            instances.map(async (instance) => {
              const result = await gql<{ consumers: { name: string; processed: number; deadLettered: number }[] }>(
                instance!.url,
                `{ consumers { name processed deadLettered } }`,
              );
              return result.data?.consumers;
            }),
          );
          expect(figures[0]).toEqual([{ name: consumer, processed: counts.unique, deadLettered: 0 }]);
          expect(figures[1]).toEqual(figures[0]);
          expect(figures[2]).toEqual(figures[0]);
        } finally {
          await stream.stop();
          live.close();
          await client.dispose();
          await scope.dispose();
          await database.drop();
        }
      },
      300_000,
    );
  }
});
