/**
 * `npm run bench:publish [-- memory rabbitmq kafka nats]`: the publishing hot path of a real
 * gateway process over HTTP, against `{ __typename }` on the same process in the same run.
 *
 * Per broker and store: a fresh gateway (`dist/main.js`, built first, as `npm start` runs it) and a load generator in a process of
 * its own with 32 keep-alive connections. The store is SQLite with `synchronous=FULL` (the
 * default); `BENCH_STORE=postgres` runs on a fresh PostgreSQL database instead (made and dropped
 * per gateway), `BENCH_STORE=sqlite,postgres` on both, one after the other, per broker. Rounds of
 * 5 s alternate `{ __typename }`, `publishEvent` and `publishEvents` (10 events); each figure is
 * the median of the rounds. Then `publishEvent` runs at half the measured rate (open loop) and the
 * latency from each mutation's answer to the broker's confirm (the row's `published_at`) is read
 * back from the outbox. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { openStore } from '../src/store/store.js';
import { GatewayScope, type GatewayProcess } from '../tests/helpers/gateway-process.js';
import { benchDatabase, benchStores, load, prepareBroker, publishBody, publishManyBody, TYPENAME, waitForDrain, type BenchDatabase } from './gateway-load.js';
import type { LoadResult, LoadSpec } from './http-load.js';
import { buildGateway, fmt, machine, median, percentile, printTable, runBenchmark } from './report.js';

const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 5000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
/** `BENCH_CPU_PROF=<dir>`: write a CPU profile of each gateway process there (`npm run bench:profile` reads it). */
const PROFILE_DIR = process.env['BENCH_CPU_PROF'];

const ms = (n: number) => `${n.toFixed(1)} ms`;

interface Figures {
  typename: LoadResult[];
  publish: LoadResult[];
  publishMany: LoadResult[];
  confirm: { p50: number; p99: number; rate: number; n: number };
}

async function measure(gateway: GatewayProcess, topic: string, database: BenchDatabase): Promise<Figures> {
  const spec = (bodyTemplate: string, durationMs = ROUND_MS): LoadSpec => ({ url: gateway.url, connections: CONNECTIONS, durationMs, bodyTemplate });
  // Warm up the JIT, the broker connection and the topic.
  await load(spec(TYPENAME, 1500));
  await load(spec(publishBody(topic), 1500));
  const figures: Figures = { typename: [], publish: [], publishMany: [], confirm: { p50: NaN, p99: NaN, rate: 0, n: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    figures.typename.push(await load(spec(TYPENAME)));
    figures.publish.push(await load(spec(publishBody(topic))));
    figures.publishMany.push(await load(spec(publishManyBody(topic))));
  }
  // Latency from answer to broker confirm at half the measured rate, with the backlog drained first.
  await waitForDrain(gateway.url);
  const rate = Math.max(1, Math.round(median(figures.publish.map((r) => r.perSecond)) / 2));
  const open = await load({ ...spec(publishBody(topic)), ratePerSec: rate, keepBodies: true });
  await waitForDrain(gateway.url);
  const answered = new Map<number, number>();
  for (const [, answeredAt, body] of open.bodies ?? []) {
    answered.set(Number((JSON.parse(body) as { data: { publishEvent: { outboxId: string } } }).data.publishEvent.outboxId), answeredAt);
  }
  const store = openStore(database.storeOptions);
  const delays: number[] = [];
  try {
    for (const [id, answeredAt] of answered) {
      const row = await store.outbox.get(id);
      if (row?.publishedAt) delays.push(Math.max(0, row.publishedAt.getTime() - answeredAt));
    }
  } finally {
    await store.close();
  }
  figures.confirm = { p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), rate, n: delays.length };
  return figures;
}

async function main(): Promise<void> {
  buildGateway();
  const wanted = process.argv.slice(2);
  const brokers = wanted.length > 0 ? wanted : ['memory', 'rabbitmq', 'kafka', 'nats'];
  const stores = benchStores();
  const synchronous = process.env['BENCH_SQLITE_SYNCHRONOUS'] === 'NORMAL' ? ' (SQLite synchronous=NORMAL)' : '';
  console.log(
    `publish vs { __typename }: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_MS / 1000} s each, medians; stores: ${stores.join(', ')}${synchronous}`,
  );
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  for (const broker of brokers) {
    const publishRates = new Map<string, number>();
    for (const kind of stores) {
      const scope = new GatewayScope();
      const topic = `bench-${randomUUID().slice(0, 8)}`;
      const cleanup = await prepareBroker(broker, topic);
      const database = await benchDatabase(kind, scope);
      try {
        const gateway = await scope.start({
          entry: 'built',
          broker,
          databasePath: database.path,
          env: database.env,
          nodeArgs: PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
        });
        const f = await measure(gateway, topic, database);
        // A graceful stop, so that a profile (if asked for) is written.
        if (PROFILE_DIR) await gateway.terminate(30_000);
        const typename = median(f.typename.map((r) => r.perSecond));
        const publish = median(f.publish.map((r) => r.perSecond));
        const many = median(f.publishMany.map((r) => r.perSecond));
        publishRates.set(kind, publish);
        const p = (xs: LoadResult[], key: 'p50Ms' | 'p99Ms') => median(xs.map((r) => r[key]));
        console.log(
          `${broker} on ${kind}: __typename ${f.typename.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
            `publishEvent ${f.publish.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
            `publishEvents(10) ${f.publishMany.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
            `confirm at ${f.confirm.rate} req/s over ${f.confirm.n} events`,
        );
        const sqlite = publishRates.get('sqlite');
        rows.push([
          broker,
          kind,
          `${fmt(typename)} (p50 ${ms(p(f.typename, 'p50Ms'))}, p99 ${ms(p(f.typename, 'p99Ms'))})`,
          `${fmt(publish)} (p50 ${ms(p(f.publish, 'p50Ms'))}, p99 ${ms(p(f.publish, 'p99Ms'))})`,
          `${(publish / typename).toFixed(2)}×`,
          kind !== 'sqlite' && sqlite ? `${(publish / sqlite).toFixed(2)}×` : '—',
          `${fmt(many)} req/s = ${fmt(many * 10)} ev/s (p99 ${ms(p(f.publishMany, 'p99Ms'))})`,
          `${ms(f.confirm.p50)} / ${ms(f.confirm.p99)} at ${fmt(f.confirm.rate)}/s`,
        ]);
      } finally {
        await cleanup();
        await scope.dispose();
        await database.dispose();
      }
    }
  }
  printTable(
    [
      'broker',
      'store',
      '`{ __typename }` req/s',
      '`publishEvent` req/s',
      'ratio',
      '`publishEvent` ÷ SQLite',
      '`publishEvents` (10 events)',
      'answer → confirm p50 / p99 (half load)',
    ],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

runBenchmark(main);
