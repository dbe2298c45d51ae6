/**
 * `npm run bench:instances [-- nats memory …]`: the aggregate `publishEvent` rate of three gateway
 * processes on one PostgreSQL database, the load generator dealing its 32 connections round-robin
 * over them (as a load balancer would), against one of those processes taking the same load
 * alone, in the same run.
 *
 * Per broker: a fresh database (made and dropped), three gateways started on it as the
 * multi-instance fault test starts them, and rounds of BENCH_ROUND_MS alternating one instance
 * (the other two idle) and all three. Each round also reads the CPU time the gateways, PostgreSQL,
 * the broker and the load generator used, from `/proc`, so that the figures say where the cores
 * went. Medians of BENCH_ROUNDS. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { GatewayScope } from '../tests/helpers/gateway-process.js';
import { withConnection } from '../tests/helpers/postgres.js';
import { benchDatabase, loadSpread, prepareBroker, publishBody, TYPENAME, waitForDrain } from './gateway-load.js';
import type { SpreadResult } from './http-load-spread.js';
import { cpuOf, machineCpu, pidsNamed } from './proc-cpu.js';
import { buildGateway, fmt, machine, median, printTable, runBenchmark } from './report.js';

const INSTANCES = 3;
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 5000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
/** The broker's server process (its `comm`); the memory broker runs inside the gateways. */
const BROKER_PROCESS: Record<string, string[]> = { memory: [], nats: ['nats-server'], rabbitmq: ['beam.smp'], kafka: ['java'] };

interface Round {
  result: SpreadResult;
  /** CPU ms per request, by who used it. */
  perRequest: Record<string, number>;
  /** Share of the machine's CPU time that was busy during the round. */
  busy: number;
  /** Share of that busy time the parties above used (the rest: other work on the machine). */
  ours: number;
  /** Transactions the database committed per answered request (mutations, claims, settles). */
  commits: number;
}

/** Transactions committed in the database so far. PostgreSQL 15 flushes these counts at most once a second. */
async function commitsSoFar(url: string): Promise<number> {
  await new Promise((r) => setTimeout(r, 1500));
  return withConnection(url, async (sql) => {
    const [row] = await sql<{ n: string }[]>`select xact_commit::text as n from pg_stat_database where datname = current_database()`;
    return Number(row!.n);
  });
}

/** One round of closed-loop load on `urls`, with the CPU each party used meanwhile. */
async function round(broker: string, databaseUrl: string, urls: string[], gatewayPids: number[], body: string): Promise<Round> {
  const commitsBefore = await commitsSoFar(databaseUrl);
  // Processes by their `comm`, besides the gateways: what else takes CPU in a publish.
  const others: Record<string, string[]> = { postgres: ['postgres'], broker: BROKER_PROCESS[broker] ?? [] };
  const groups: Record<string, number[]> = { gateways: gatewayPids, ...Object.fromEntries(Object.entries(others).map(([k, names]) => [k, pidsNamed(names)])) };
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, new Map(pids.map((pid) => [pid, cpuOf(pid)]))]));
  const machineBefore = machineCpu();
  const result = await loadSpread({ urls, connections: CONNECTIONS, durationMs: ROUND_MS, bodyTemplate: body });
  const machineAfter = machineCpu();
  const perRequest: Record<string, number> = {};
  for (const [group, pids] of Object.entries(groups)) {
    // Processes that started during the round (new PostgreSQL backends) count from 0.
    const after = [...new Set([...pids, ...(group === 'gateways' ? [] : pidsNamed(others[group]!))])];
    const used = after.reduce((sum, pid) => sum + Math.max(0, cpuOf(pid) - (before[group]!.get(pid) ?? 0)), 0);
    perRequest[group] = used / result.requests;
  }
  perRequest['load generator'] = result.cpuMs / result.requests;
  const ours = Object.values(perRequest).reduce((a, b) => a + b, 0) * result.requests;
  const busy = machineAfter.busy - machineBefore.busy;
  const commits = ((await commitsSoFar(databaseUrl)) - commitsBefore) / result.requests;
  return { result, perRequest, busy: busy / (machineAfter.total - machineBefore.total), ours: ours / busy, commits };
}

const us = (ms: number) => `${Math.round(ms * 1000)}`;

async function main(): Promise<void> {
  buildGateway();
  const wanted = process.argv.slice(2);
  const brokers = wanted.length > 0 ? wanted : ['nats'];
  console.log(
    `publishEvent on ${INSTANCES} instances vs 1, one PostgreSQL database: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_MS / 1000} s, medians`,
  );
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  const cpuRows: string[][] = [];
  for (const broker of brokers) {
    const scope = new GatewayScope();
    const topic = `bench-${randomUUID().slice(0, 8)}`;
    const cleanup = await prepareBroker(broker, topic);
    const database = await benchDatabase('postgres', scope);
    try {
      const gateways = await Promise.all(
        Array.from({ length: INSTANCES }, () => scope.start({ entry: 'built', broker, databasePath: database.path, env: database.env })),
      );
      const all = gateways.map((g) => g.url);
      const one = [all[0]!];
      const pids = gateways.map((g) => g.pid);
      // Warm up every process's JIT, broker connection and topic.
      await loadSpread({ urls: all, connections: CONNECTIONS, durationMs: 1500, bodyTemplate: TYPENAME });
      await loadSpread({ urls: all, connections: CONNECTIONS, durationMs: 2000, bodyTemplate: publishBody(topic) });
      const rounds: Record<'one' | 'all', Round[]> = { one: [], all: [] };
      for (let r = 0; r < ROUNDS; r++) {
        // Each round starts with an empty outbox, so neither arm inherits the other's backlog.
        await waitForDrain(all[0]!);
        rounds.one.push(await round(broker, database.env['DATABASE_URL']!, one, pids, publishBody(topic)));
        await waitForDrain(all[0]!);
        rounds.all.push(await round(broker, database.env['DATABASE_URL']!, all, pids, publishBody(topic)));
      }
      for (const [arm, list] of Object.entries(rounds)) {
        console.log(
          `${broker}, ${arm === 'one' ? 1 : INSTANCES} instance(s): ${list.map((x) => fmt(x.result.perSecond)).join(' / ')} req/s` +
            (arm === 'all' ? `; per instance ${list.map((x) => x.result.perUrl.map(fmt).join('+')).join(' / ')}` : '') +
            `; machine busy ${list.map((x) => `${Math.round(x.busy * 100)} %`).join(' / ')}`,
        );
      }
      const one1 = median(rounds.one.map((x) => x.result.perSecond));
      const all3 = median(rounds.all.map((x) => x.result.perSecond));
      for (const [arm, list] of [
        ['1 instance', rounds.one],
        [`${INSTANCES} instances`, rounds.all],
      ] as const) {
        const rate = median(list.map((x) => x.result.perSecond));
        rows.push([
          broker,
          arm,
          fmt(rate),
          `${median(list.map((x) => x.result.p50Ms)).toFixed(0)} ms`,
          `${median(list.map((x) => x.result.p99Ms)).toFixed(0)} ms`,
          arm === '1 instance' ? '1.00×' : `${(all3 / one1).toFixed(2)}×`,
          `${Math.round(median(list.map((x) => x.busy)) * 100)} %`,
          `${Math.round(median(list.map((x) => x.ours)) * 100)} %`,
          median(list.map((x) => x.commits)).toFixed(2),
        ]);
        const cpu = (group: string) => us(median(list.map((x) => x.perRequest[group]!)));
        const total = median(list.map((x) => Object.values(x.perRequest).reduce((a, b) => a + b, 0)));
        cpuRows.push([broker, arm, cpu('gateways'), cpu('postgres'), cpu('broker'), cpu('load generator'), us(total)]);
      }
    } finally {
      await cleanup();
      await scope.dispose();
      await database.dispose();
    }
  }
  printTable(
    ['broker', 'gateways', '`publishEvent` req/s', 'p50', 'p99', 'vs 1 instance', 'machine busy', 'of which this benchmark', 'PostgreSQL commits per request'],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
  printTable(
    ['broker', 'gateways', 'gateway processes', 'PostgreSQL', 'broker', 'load generator', 'all of these'],
    ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
    cpuRows.map((row) => row.map((cell, i) => (i >= 2 ? `${cell} µs` : cell))),
  );
  console.log('\n(CPU per answered publishEvent, medians of the rounds; the machine has 2 cores, so 1 s of wall time is at most 2 s of CPU)');
}

runBenchmark(main);
