/**
 * `npm run bench:fanout [-- 1000 5000 10000 | 1000@50 …]`: live fan-out of one topic to N
 * WebSocket subscribers by a real gateway process (BROKER=nats), against a bare `ws` server
 * broadcasting the same frames to the same clients, in one run.
 *
 * Per N (the rate: `N@rate`, else BENCH_RATE, else 50 ev/s up to 1,000 subscribers and 10 ev/s
 * above): client processes of at most BENCH_CLIENTS_PER_PROCESS raw `ws` subscribers each
 * (`fanout-clients.ts`; a process may hold 20,000 open files here), measured first against the
 * bare server (`fanout-bare-ws.ts`), then against a fresh gateway (`node src/main.ts`), the same
 * way (`fanout-measure.ts`): the server's VmRSS before the subscribers connect and once they are
 * all subscribed and idle, (after − before) / N per idle subscription; then BENCH_SECONDS (20) of
 * events at the fixed rate, each with `{ sent: Date.now(), n }` as data: to the gateway as
 * `publishEvent` mutations over HTTP (so its latency covers HTTP → outbox → relay → NATS →
 * fan-out), from the bare server by its own timer (`fanout-targets.ts`). Latency = receipt −
 * sent, per event per subscriber, p50 / p99 over all receipts. Delivered = receipts by
 * BENCH_GRACE_MS after the last event was sent ÷ (events × N), so a server that falls behind
 * delivers less than 1. Each log line adds the server's CPU (per frame, and how long its event
 * loop waited for a CPU: the machine is shared), the clients' CPU (BENCH_CLIENT_PARSE=scan|json),
 * and for the gateway where the time goes (`stages`). BENCH_CPU_PROF=<dir> profiles both servers.
 * A benchmark, not a test: it prints figures and asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { GatewayScope } from '../tests/helpers/gateway-process.js';
import type { ClientsSpec } from './fanout-clients.js';
import { describe, GRACE_MS, measure, SECONDS, type Figures } from './fanout-measure.js';
import { CommandChild } from './fanout-protocol.js';
import { bareTarget, gatewayTarget, publish } from './fanout-targets.js';
import { fmt, machine, percentile, printTable, runBenchmark } from './report.js';

const PER_PROCESS = Number(process.env['BENCH_CLIENTS_PER_PROCESS'] ?? 5000);
const PARSE = (process.env['BENCH_CLIENT_PARSE'] ?? 'scan') as ClientsSpec['parse'];
/** `BENCH_CPU_PROF=<dir>`: write a CPU profile of each gateway and bare server process there (node --cpu-prof). */
const PROFILE_DIR = process.env['BENCH_CPU_PROF'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Where the gateway's latency goes, per event, from its outbox row, all from `sent`: row written
 * (`created_at`: HTTP and the mutation), broker confirmed (`published_at`: the relay and NATS; a
 * subscriber may receive the event before the relay has recorded the confirm), first and last
 * receipt (the fan-out).
 */
function stages(databasePath: string, topic: string, f: Figures): string {
  const db = new Database(databasePath, { readonly: true });
  try {
    const rows = db
      .prepare(`select json_extract(body, '$.data.n') as n, created_at as created, published_at as published from outbox where topic = ?`)
      .all(topic) as { n: number; created: number; published: number | null }[];
    const written: number[] = [];
    const confirmed: number[] = [];
    for (const { n, created, published } of rows) {
      const sent = f.perEvent.sentAt?.[n];
      if (n < 0 || sent === undefined || published === null) continue;
      written.push(created - sent);
      confirmed.push(published - sent);
    }
    const p = (xs: number[]) => `${percentile(xs, 0.5)} / ${percentile(xs, 0.99)}`;
    const sentAt = f.perEvent.sentAt ?? [];
    const rate = (sentAt.length - 1) / ((sentAt.at(-1)! - sentAt[0]!) / 1000);
    const received = (xs: number[]) => p(xs.filter((ms) => !Number.isNaN(ms)));
    return (
      `  gateway, ${fmt(written.length)} events sent at ${rate.toFixed(1)}/s; from sent, p50 / p99 ms: row written ${p(written)}, ` +
      `broker confirmed ${p(confirmed)}, first receipt ${received(f.perEvent.first)}, last receipt ${received(f.perEvent.last)}`
    );
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const runs = (wanted.length > 0 ? wanted : ['1000', '5000', '10000']).map((arg) => {
    const [n, rate] = arg.split('@').map(Number);
    return { n: n!, rate: rate ?? Number(process.env['BENCH_RATE'] ?? (n! <= 1000 ? 50 : 10)) };
  });
  console.log(
    `fan-out, gateway (nats) vs bare ws: ${runs.map((r) => `${fmt(r.n)} subscribers × ${r.rate} ev/s`).join(', ')}; ` +
      `${SECONDS} s each, ${GRACE_MS} ms grace, ≤ ${fmt(PER_PROCESS)} clients per process (${PARSE} frames)`,
  );
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  for (const { n, rate } of runs) {
    const processes = Math.ceil(n / PER_PROCESS);
    const counts = Array.from({ length: processes }, (_, i) => Math.floor(n / processes) + (i < n % processes ? 1 : 0));
    const clients: CommandChild<unknown>[] = [];
    const scope = new GatewayScope();
    let bare: { stop: () => Promise<void> } | undefined;
    try {
      for (let i = 0; i < processes; i++) {
        // One source address per process: each gets its own range of ephemeral ports.
        clients.push(await CommandChild.start('bench/fanout-clients.ts', { localAddress: `127.0.0.${2 + i}`, parse: PARSE } satisfies ClientsSpec));
      }
      console.log(`${fmt(n)} subscribers × ${rate} ev/s (${counts.map(fmt).join(' + ')} clients):`);
      const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
      const started = await bareTarget(profile);
      bare = started;
      const baseline = await measure(started.target, clients, counts, rate);
      await started.stop();
      console.log(describe('bare ws', baseline));

      const databasePath = scope.database();
      const gateway = await scope.start({
        broker: 'nats',
        databasePath,
        nodeArgs: profile,
      });
      const topic = `fanout-${randomUUID().slice(0, 8)}`;
      // Warm the publishing path (and the topic) before the first RSS reading.
      await publish(gateway, topic, { sent: Date.now(), n: -1 });
      await sleep(1000);
      const figures = await measure(gatewayTarget(gateway, topic), clients, counts, rate);
      // A graceful stop, so that a profile (if asked for) is written.
      await gateway.terminate(30_000);
      console.log(describe('gateway', figures));
      console.log(stages(databasePath, topic, figures));
      rows.push([
        `${fmt(n)} × ${rate} ev/s`,
        `${figures.p50} / ${figures.p99} ms`,
        `${baseline.p50} / ${baseline.p99} ms`,
        `${(figures.delivered / baseline.delivered).toFixed(2)} (${figures.delivered.toFixed(3)} / ${baseline.delivered.toFixed(3)})`,
        `${figures.kbPerSubscription.toFixed(1)} / ${baseline.kbPerSubscription.toFixed(1)}`,
      ]);
    } finally {
      await bare?.stop();
      await Promise.all(clients.map((client) => client.end()));
      await scope.dispose();
    }
  }
  printTable(
    ['subscribers × rate', 'gateway p50 / p99', 'bare ws p50 / p99', 'delivered-rate ratio, gateway ÷ bare ws (gateway / bare)', 'KB per idle subscription, gateway / bare ws'],
    ['l', 'r', 'r', 'r', 'r'],
    rows,
  );
}

runBenchmark(main);
