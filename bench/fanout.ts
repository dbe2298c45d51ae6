/**
 * `npm run bench:fanout [-- 1000 5000 10000 | 1000@50 … | --metrics]`: live fan-out of one topic
 * to N WebSocket subscribers by a real gateway process (BROKER=nats, defaults otherwise: metrics
 * on, `/metrics` scraped every BENCH_SCRAPE_MS = 5 s as a Prometheus would), against a bare `ws`
 * server broadcasting the same frames to the same clients, in one run. `--metrics` measures the
 * gateway with METRICS=false and with metrics on (scraped), alternately, BENCH_METRICS_ROUNDS (2)
 * times each, against the same baseline.
 *
 * Per N (the rate: `N@rate`, else BENCH_RATE, else 50 ev/s up to 1,000 subscribers, 10 up to
 * 5,000, 5 above): client processes of at most BENCH_CLIENTS_PER_PROCESS raw `ws` subscribers each
 * (`fanout-clients.ts`; a process may hold 20,000 open files here), measured first against the
 * bare server (`fanout-bare-ws.ts`), then against a fresh gateway (`node dist/main.js`, built first, as `npm start` runs it), the same
 * way (`fanout-measure.ts`): the server's VmRSS before the subscribers connect and once they are
 * all subscribed and idle, (after − before) / N per idle subscription; then BENCH_SECONDS (20) of
 * events at the fixed rate, each with `{ sent, n }` as data (`sent`: the time it was due, so
 * that falling behind the schedule counts as latency on both sides): to the gateway as
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
import { loadavg } from 'node:os';
import Database from 'better-sqlite3';
import { GatewayScope } from '../tests/helpers/gateway-process.js';
import type { ClientsSpec } from './fanout-clients.js';
import { describe, GRACE_MS, measure, SECONDS, type Figures } from './fanout-measure.js';
import { CommandChild } from './fanout-protocol.js';
import { startScraping, type ScrapeSummary } from './fanout-scrape.js';
import { bareTarget, gatewayTarget, publish } from './fanout-targets.js';
import { buildGateway, fmt, machine, percentile, printTable, runBenchmark } from './report.js';

const PER_PROCESS = Number(process.env['BENCH_CLIENTS_PER_PROCESS'] ?? 5000);
const PARSE = (process.env['BENCH_CLIENT_PARSE'] ?? 'scan') as ClientsSpec['parse'];
/** `BENCH_CPU_PROF=<dir>`: write a CPU profile of each gateway and bare server process there (node --cpu-prof). */
const PROFILE_DIR = process.env['BENCH_CPU_PROF'];
/** With `--metrics`: how often the gateway with metrics on is scraped, and how many off/on pairs are measured per load. */
const SCRAPE_MS = Number(process.env['BENCH_SCRAPE_MS'] ?? 5000);
const METRICS_ROUNDS = Number(process.env['BENCH_METRICS_ROUNDS'] ?? 2);

/** 50 ev/s up to 1,000 subscribers, 10 up to 5,000, 5 above: 10,000 × 5 sends as many frames as 5,000 × 10. */
const defaultRate = (n: number) => (n <= 1000 ? 50 : n <= 5000 ? 10 : 5);

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

/** One gateway measurement: a fresh process (METRICS as asked) on its own database and topic. */
async function measureGateway(
  scope: GatewayScope,
  clients: CommandChild<unknown>[],
  counts: number[],
  rate: number,
  { metrics, profile, label }: { metrics: boolean; profile: readonly string[]; label: string },
): Promise<{ figures: Figures; scrape?: ScrapeSummary }> {
  const databasePath = scope.database(`gateway-${randomUUID().slice(0, 8)}.db`);
  const gateway = await scope.start({
    entry: 'built',
    broker: 'nats',
    databasePath,
    env: { METRICS: String(metrics) },
    nodeArgs: profile,
  });
  const topic = `fanout-${randomUUID().slice(0, 8)}`;
  // Warm the publishing path (and the topic) before the first RSS reading.
  await publish(gateway, topic, { sent: Date.now(), n: -1 });
  await sleep(1000);
  // With metrics on, scraped as a Prometheus would be, from before the subscribers connect to the end.
  const scraping = metrics ? startScraping(gateway.url, SCRAPE_MS) : undefined;
  const figures = await measure(gatewayTarget(gateway, topic), clients, counts, rate);
  const scrape = await scraping?.stop();
  // A graceful stop, so that a profile (if asked for) is written.
  await gateway.terminate(30_000);
  const scraped = scrape
    ? `; /metrics scraped ${scrape.scrapes}× every ${SCRAPE_MS / 1000} s (${scrape.failures} failed), p50 ${scrape.p50Ms} / max ${scrape.maxMs} ms, ${fmt(scrape.bytes)} B`
    : '';
  console.log(`${describe(label, figures)}${scraped}`);
  console.log(stages(databasePath, topic, figures));
  return { figures, ...(scrape ? { scrape } : {}) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const compareMetrics = args.includes('--metrics');
  const wanted = args.filter((arg) => !arg.startsWith('--'));
  const runs = (wanted.length > 0 ? wanted : ['1000', '5000', '10000']).map((arg) => {
    const [n, rate] = arg.split('@').map(Number);
    return { n: n!, rate: rate ?? Number(process.env['BENCH_RATE'] ?? defaultRate(n!)) };
  });
  console.log(
    `fan-out, gateway (nats) vs bare ws: ${runs.map((r) => `${fmt(r.n)} subscribers × ${r.rate} ev/s`).join(', ')}; ` +
      `${SECONDS} s each, ${GRACE_MS} ms grace, ≤ ${fmt(PER_PROCESS)} clients per process (${PARSE} frames)` +
      (compareMetrics ? `; gateway with METRICS=false and on (scraped every ${SCRAPE_MS / 1000} s), alternately, ${METRICS_ROUNDS}× each` : ''),
  );
  console.log(`${machine()}\n`);
  buildGateway();
  const rows: string[][] = [];
  const metricsRows: string[][] = [];
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
      console.log(
        `${fmt(n)} subscribers × ${rate} ev/s (${counts.map(fmt).join(' + ')} clients), load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}:`,
      );
      const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
      const started = await bareTarget(profile);
      bare = started;
      const baseline = await measure(started.target, clients, counts, rate);
      await started.stop();
      console.log(describe('bare ws', baseline));

      const variants = compareMetrics ? Array.from({ length: METRICS_ROUNDS }, () => [false, true]).flat() : [true];
      let figures: Figures | undefined;
      for (const [i, metrics] of variants.entries()) {
        const label = compareMetrics ? `gateway, METRICS=${metrics}, round ${Math.floor(i / 2) + 1}` : 'gateway';
        const run = await measureGateway(scope, clients, counts, rate, { metrics, profile, label });
        if (metrics) figures ??= run.figures;
        if (compareMetrics) {
          metricsRows.push([
            `${fmt(n)} × ${rate} ev/s`,
            metrics ? `on, scraped ${run.scrape?.scrapes ?? 0}× (p50 ${run.scrape?.p50Ms} ms)` : 'off',
            `${run.figures.p50} / ${run.figures.p99} ms`,
            `${(run.figures.delivered / baseline.delivered).toFixed(2)}`,
            `${(run.figures.serverCpu * 100).toFixed(0)} % (${run.figures.cpuPerFrameUs.toFixed(1)} µs)`,
            run.figures.kbPerSubscription.toFixed(1),
          ]);
        }
      }
      rows.push([
        `${fmt(n)} × ${rate} ev/s`,
        `${figures!.p50} / ${figures!.p99} ms`,
        `${baseline.p50} / ${baseline.p99} ms`,
        `${(figures!.delivered / baseline.delivered).toFixed(2)} (${figures!.delivered.toFixed(3)} / ${baseline.delivered.toFixed(3)})`,
        `${figures!.kbPerSubscription.toFixed(1)} / ${baseline.kbPerSubscription.toFixed(1)}`,
      ]);
    } finally {
      await bare?.stop();
      await Promise.all(clients.map((client) => client.end()));
      await scope.dispose();
    }
  }
  printTable(
    [
      'subscribers × rate',
      'gateway p50 / p99',
      'bare ws p50 / p99',
      'delivered-rate ratio, gateway ÷ bare ws (gateway / bare)',
      'KB per idle subscription, gateway / bare ws',
    ],
    ['l', 'r', 'r', 'r', 'r'],
    rows,
  );
  if (compareMetrics) {
    printTable(
      ['subscribers × rate', 'metrics', 'gateway p50 / p99', 'delivered-rate ratio vs bare ws', 'gateway CPU (per frame)', 'KB per idle subscription'],
      ['l', 'l', 'r', 'r', 'r', 'r'],
      metricsRows,
    );
  }
  console.log(
    `\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

runBenchmark(main);
