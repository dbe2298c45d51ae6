/**
 * `npm run bench:metrics [-- memory nats …]`: what Prometheus metrics cost the publishing hot
 * path. Per broker, two gateway processes side by side on stores of their own (`BENCH_STORE`,
 * SQLite by default): one with `METRICS=false`, one with the default (metrics on) whose
 * `/metrics` is scraped every 5 s while it is under load, as Prometheus would. Rounds of
 * BENCH_ROUND_MS (10 s) of `publishEvent` at 32 connections alternate between the two, so drift
 * in the machine's load hits both alike; medians of BENCH_ROUNDS. Also the gateway process's CPU
 * time per answered request (from `/proc`), which other work on the machine disturbs less than the
 * rate. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { GatewayScope, type GatewayProcess } from '../tests/helpers/gateway-process.js';
import { benchDatabase, benchStores, load, prepareBroker, publishBody, TYPENAME, waitForDrain, type BenchDatabase } from './gateway-load.js';
import type { LoadResult } from './http-load.js';
import { cpuOf } from './proc-cpu.js';
import { buildGateway, fmt, machine, median, printTable, runBenchmark } from './report.js';

const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 10_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const SCRAPE_EVERY_MS = 5000;

/** Scrapes `/metrics` 1 s into the round and every 5 s after, until stopped; counts the scrapes. */
function scrapeWhileLoaded(gateway: GatewayProcess): { stop(): Promise<{ scrapes: number; bytes: number; slowestMs: number }> } {
  let scrapes = 0;
  let bytes = 0;
  let slowestMs = 0;
  const inFlight = new Set<Promise<void>>();
  const scrape = () => {
    const started = performance.now();
    const p = fetch(`http://127.0.0.1:${gateway.port}/metrics`)
      .then(async (response) => {
        if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
        bytes += (await response.text()).length;
        scrapes++;
        slowestMs = Math.max(slowestMs, performance.now() - started);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    scrape();
    interval = setInterval(scrape, SCRAPE_EVERY_MS);
  }, 1000);
  return {
    async stop() {
      clearTimeout(first);
      clearInterval(interval);
      await Promise.all(inFlight);
      return { scrapes, bytes, slowestMs };
    },
  };
}

async function main(): Promise<void> {
  buildGateway();
  const wanted = process.argv.slice(2);
  const brokers = wanted.length > 0 ? wanted : ['memory'];
  const [kind] = benchStores();
  console.log(
    `publishEvent, METRICS=false vs metrics on and scraped every ${SCRAPE_EVERY_MS / 1000} s: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_MS / 1000} s each, alternating, medians; store: ${kind}`,
  );
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  for (const broker of brokers) {
    const scope = new GatewayScope();
    const topic = `bench-${randomUUID().slice(0, 8)}`;
    const cleanup = await prepareBroker(broker, topic);
    const databases: BenchDatabase[] = [];
    try {
      const start = async (metrics: boolean) => {
        const database = await benchDatabase(kind!, scope);
        databases.push(database);
        return scope.start({ entry: 'built', broker, databasePath: database.path, env: { ...database.env, ...(metrics ? {} : { METRICS: 'false' }) } });
      };
      const arms = { off: await start(false), on: await start(true) };
      const spec = (gateway: GatewayProcess, bodyTemplate: string, durationMs = ROUND_MS) => ({
        url: gateway.url,
        connections: CONNECTIONS,
        durationMs,
        bodyTemplate,
      });
      for (const gateway of Object.values(arms)) {
        await load(spec(gateway, TYPENAME, 1500));
        await load(spec(gateway, publishBody(topic), 2000));
      }
      const results: Record<'off' | 'on', LoadResult[]> = { off: [], on: [] };
      const cpuPerRequest: Record<'off' | 'on', number[]> = { off: [], on: [] };
      const scraped = { scrapes: 0, bytes: 0, slowestMs: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which arm goes first, so neither always follows the other's backlog.
        const order = round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
        for (const arm of order) {
          await waitForDrain(arms.off.url);
          await waitForDrain(arms.on.url);
          const scraper = arm === 'on' ? scrapeWhileLoaded(arms.on) : undefined;
          const cpuBefore = cpuOf(arms[arm].pid);
          const result = await load(spec(arms[arm], publishBody(topic)));
          results[arm].push(result);
          cpuPerRequest[arm].push((cpuOf(arms[arm].pid) - cpuBefore) / result.requests);
          if (scraper) {
            const s = await scraper.stop();
            scraped.scrapes += s.scrapes;
            scraped.bytes += s.bytes;
            scraped.slowestMs = Math.max(scraped.slowestMs, s.slowestMs);
          }
        }
      }
      const rate = (arm: 'off' | 'on') => median(results[arm].map((r) => r.perSecond));
      const p = (arm: 'off' | 'on', key: 'p50Ms' | 'p99Ms') => median(results[arm].map((r) => r[key]));
      for (const arm of ['off', 'on'] as const) {
        console.log(`${broker}, metrics ${arm}: ${results[arm].map((r) => `${fmt(r.perSecond)} req/s (p99 ${r.p99Ms.toFixed(1)} ms)`).join(' / ')}`);
      }
      // Rounds of one pair ran back to back: their ratio cancels most of the drift between pairs.
      const paired = median(results.on.map((r, i) => r.perSecond / results.off[i]!.perSecond));
      console.log(
        `${broker}: on ÷ off per pair of rounds ${results.on.map((r, i) => (r.perSecond / results.off[i]!.perSecond).toFixed(3)).join(' / ')}, median ${paired.toFixed(3)}`,
      );
      const cpu = (arm: 'off' | 'on') => median(cpuPerRequest[arm]) * 1000;
      console.log(
        `${broker}: gateway CPU per request, off ${cpuPerRequest.off.map((ms) => (ms * 1000).toFixed(0)).join(' / ')} µs; on ${cpuPerRequest.on.map((ms) => (ms * 1000).toFixed(0)).join(' / ')} µs`,
      );
      console.log(
        `${broker}: ${scraped.scrapes} scrapes under load, ${fmt(scraped.bytes / Math.max(1, scraped.scrapes))} bytes each, slowest ${scraped.slowestMs.toFixed(0)} ms`,
      );
      rows.push([
        broker,
        `${fmt(rate('off'))} (p50 ${p('off', 'p50Ms').toFixed(1)} ms, p99 ${p('off', 'p99Ms').toFixed(1)} ms)`,
        `${fmt(rate('on'))} (p50 ${p('on', 'p50Ms').toFixed(1)} ms, p99 ${p('on', 'p99Ms').toFixed(1)} ms)`,
        `${((rate('on') / rate('off') - 1) * 100).toFixed(1)} %`,
        `${((p('on', 'p99Ms') / p('off', 'p99Ms') - 1) * 100).toFixed(1)} %`,
        `${((paired - 1) * 100).toFixed(1)} %`,
        `${cpu('off').toFixed(0)} → ${cpu('on').toFixed(0)} µs (${((cpu('on') / cpu('off') - 1) * 100).toFixed(1)} %)`,
      ]);
    } finally {
      await cleanup();
      await scope.dispose();
      for (const database of databases) await database.dispose();
    }
  }
  printTable(
    [
      'broker',
      '`METRICS=false` req/s',
      'metrics on, scraped every 5 s, req/s',
      'req/s on vs off',
      'p99 on vs off',
      'req/s on vs off, median of pairs',
      'gateway CPU per request, off → on',
    ],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

runBenchmark(main);
