import { describe, it } from 'vitest';
import { requireBroker } from '../helpers/brokers.js';
import { waitFor } from '../helpers/events.js';
import { GatewayScope, type GatewayProcess } from '../helpers/gateway-process.js';
import { createTestDatabase, POSTGRES_HOST, POSTGRES_PORT, restartPostgres, withConnection } from '../helpers/postgres.js';
import { brokerState, PublishStream } from '../helpers/publish-stream.js';
import type { WebhookRecorder } from '../helpers/webhook-recorder.js';
import { reportFault, tally } from './fault-tally.js';
import { gatewayTargets } from '../targets/gateway-targets.js';
import type { BrokerTarget } from '../targets/target.js';

const postgres = await requireBroker('PostgreSQL', POSTGRES_HOST, POSTGRES_PORT);
const targets = postgres ? (await gatewayTargets()).filter((t) => t.features.durableConsumers) : [];

/** How long PostgreSQL stays down once stopped. */
const DOWN_MS = 4000;

interface Run {
  readonly target: BrokerTarget;
  readonly database: { url: string; drop(): Promise<void> };
  readonly consumer: string;
  readonly recorder: WebhookRecorder;
  readonly gateway: GatewayProcess;
  readonly stream: PublishStream;
}

/**
 * PostgreSQL restarted under load (stopped with `-m fast`, which cuts every connection, kept down a
 * few seconds, started again), one gateway per broker on it. While it is down mutations answer
 * `STORE_UNAVAILABLE` and `/ready` says 503; every mutation that was answered with data is
 * published and handled once; and the gateways recover without a restart of their own. The
 * server is the machine's, so one restart serves every broker at once.
 */
describe('fault: PostgreSQL restarted mid-run', () => {
  it.runIf(targets.length > 0)(
    `every committed event arrives and mutations answer STORE_UNAVAILABLE meanwhile [${targets.map((t) => t.broker).join(', ')}]`,
    async ({ expect }) => {
      const scope = new GatewayScope();
      const runs: Run[] = [];
      try {
        for (const target of targets) {
          const database = await createTestDatabase();
          const topic = target.newTopic('pgrestart');
          const consumer = target.newConsumer('pgrestart');
          const recorder = await scope.recorder();
          const gateway = await scope.start({
            broker: target.broker,
            databasePath: scope.database(),
            consumers: [{ name: consumer, topic, webhook: { url: recorder.url }, backoff: { initialMs: 200, maxMs: 2000, multiplier: 2, jitter: 0.2 } }],
            env: { ...target.env, DATABASE_URL: database.url },
          });
          const stream = new PublishStream({ target: () => gateway.url, topic, count: 100_000, perSecond: 30 });
          runs.push({ target, database, consumer, recorder, gateway, stream });
        }
        await Promise.all(runs.map((r) => r.stream.waitForCommitted(60, 60_000)));

        const readyWhileDown = await restartPostgres(async () => {
          const at = Date.now();
          // Mutations keep coming while the server is gone: each is refused, none hangs.
          await waitFor(() => runs.every((r) => r.stream.refused.length > 0), DOWN_MS + 10_000, 'a refused mutation per gateway');
          const ready = await Promise.all(runs.map(async (r) => (await fetch(`${r.gateway.url.replace(/\/graphql$/, '')}/ready`)).status));
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, DOWN_MS - (Date.now() - at))));
          return ready;
        });
        const committedAtRestart = runs.map((r) => r.stream.committed.length);
        // Recovered without a restart of the gateway: mutations commit again.
        await Promise.all(runs.map((r, i) => r.stream.waitForCommitted(committedAtRestart[i]! + 60, 60_000)));
        await Promise.all(runs.map((r) => r.stream.stop()));

        for (const [i, run] of runs.entries()) {
          const committed = run.stream.committed;
          await run.recorder.waitForAll(committed, 120_000);
          await waitFor(async () => (await brokerState(run.gateway.url)).pendingEvents === 0, 30_000, 'an empty outbox');
          const counts = tally(committed, run.recorder);
          const codes = new Set(run.stream.refused.map((r) => r.code));
          // Handled once after dedupe, the processed records having been written across the outage.
          await waitFor(
            () =>
              withConnection(run.database.url, async (sql) => {
                const [row] = await sql<
                  { ids: number }[]
                >`select count(distinct event_id)::int as ids from processed_messages where consumer = ${run.consumer}`;
                return row!.ids >= counts.unique;
              }),
            30_000,
            'processed records for every event',
          );
          const processed = await withConnection(run.database.url, async (sql) => {
            const [row] = await sql<{ n: number; ids: number }[]>`
            select count(*)::int as n, count(distinct event_id)::int as ids from processed_messages where consumer = ${run.consumer}`;
            return row!;
          });
          reportFault(
            'postgres-restart',
            run.target.broker,
            counts,
            `down ${DOWN_MS} ms, refused ${run.stream.refused.length} (${[...codes].join(', ')}), unanswered ${run.stream.unanswered.length}, /ready while down ${readyWhileDown[i]}, handled once ${processed.ids}`,
          );
          expect(counts.lostIds).toEqual([]);
          expect([...codes]).toEqual(['STORE_UNAVAILABLE']);
          expect(readyWhileDown[i]).toBe(503);
          expect(processed).toEqual({ n: counts.unique, ids: counts.unique });
          expect((await fetch(`${run.gateway.url.replace(/\/graphql$/, '')}/ready`)).status).toBe(200);
          expect(run.gateway.running).toBe(true);
        }
      } finally {
        for (const run of runs) {
          if (!run.gateway.running)
            console.log(
              `gateway on ${run.target.broker} exited: ${JSON.stringify(await run.gateway.exited)}\n${run.gateway.stderr().slice(-3000)}\n${run.gateway
                .logs()
                .slice(-15)
                .map((l) => JSON.stringify(l))
                .join('\n')}`,
            );
        }
        await Promise.all(runs.map((r) => r.stream.stop()));
        await scope.dispose();
        for (const run of runs) await run.database.drop().catch(() => undefined);
      }
    },
    300_000,
  );
});
