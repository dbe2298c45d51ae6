/**
 * `npm run bench:publish [-- memory rabbitmq kafka nats]`: the publishing hot path of a real
 * gateway process over HTTP, against `{ __typename }` on the same process in the same run.
 *
 * Per broker: a fresh gateway (`node src/main.ts`, SQLite with `synchronous=FULL`, the default)
 * and a load generator in a process of its own with 32 keep-alive connections. Rounds of 5 s
 * alternate `{ __typename }`, `publishEvent` and `publishEvents` (10 events); each figure is the
 * median of the rounds. Then `publishEvent` runs at half the measured rate (open loop) and the
 * latency from each mutation's answer to the broker's confirm (the row's `published_at`) is read
 * back from the outbox. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect as amqpConnect } from 'amqplib';
import { loadConfig } from '../src/config/config.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { GatewayScope, type GatewayProcess } from '../tests/helpers/gateway-process.js';
import type { LoadResult, LoadSpec } from './http-load.js';
import { fmt, machine, median, percentile, printTable, runBenchmark } from './report.js';

const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const ROUND_MS = Number(process.env['BENCH_ROUND_MS'] ?? 5000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const settings = loadConfig({ ...process.env, GATEWAY_CONFIG: undefined }).brokers;

const TYPENAME = JSON.stringify({ query: '{ __typename }' });
const publishBody = (topic: string) =>
  JSON.stringify({
    query: 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId duplicate } }',
    variables: { i: { topic, type: 'order.created', key: 'order-{{n}}', data: { orderId: 0, total: 42.5, currency: 'EUR' } } },
  }).replace('"orderId":0', '"orderId":{{n}}');
const publishManyBody = (topic: string) =>
  JSON.stringify({
    query: 'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { outboxId } }',
    variables: {
      i: Array.from({ length: 10 }, (_, k) => ({ topic, type: 'order.created', key: `order-{{n}}-${k}`, data: { line: k, total: 42.5 } })),
    },
  });

/** Runs the load generator in its own process and returns what it measured. */
function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/http-load.ts', JSON.stringify(spec)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      const result = JSON.parse(out) as LoadResult;
      if (result.errors > 0) return reject(new Error(`${result.errors} failed requests, first: ${result.firstError}`));
      resolve(result);
    });
  });
}

/** What a broker needs so that the gateway's events are routable and confirmed. */
async function prepareBroker(broker: string, topic: string): Promise<() => Promise<void>> {
  if (broker !== 'rabbitmq') return async () => undefined;
  // RabbitMQ returns events no queue is bound for; bind one as a consumer's queue would be, and
  // read it as a consumer would: a queue that only grows makes RabbitMQ page to disk and slow down.
  const connection = await amqpConnect(settings.rabbitmq.url);
  const channel = await connection.createChannel();
  await channel.assertExchange(settings.rabbitmq.exchange, 'topic', { durable: true });
  const queue = `bench.${topic}`;
  await channel.assertQueue(queue, { durable: true });
  await channel.bindQueue(queue, settings.rabbitmq.exchange, `${topic}.#`);
  await channel.consume(queue, () => undefined, { noAck: true });
  return async () => {
    await channel.deleteQueue(queue);
    await connection.close();
  };
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

interface Figures {
  typename: LoadResult[];
  publish: LoadResult[];
  publishMany: LoadResult[];
  confirm: { p50: number; p99: number; rate: number; n: number };
}

async function measure(gateway: GatewayProcess, topic: string, databasePath: string): Promise<Figures> {
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
  await waitForDrain(gateway);
  const rate = Math.max(1, Math.round(median(figures.publish.map((r) => r.perSecond)) / 2));
  const open = await load({ ...spec(publishBody(topic)), ratePerSec: rate, keepBodies: true });
  await waitForDrain(gateway);
  const answered = new Map<number, number>();
  for (const [, answeredAt, body] of open.bodies ?? []) {
    answered.set(Number((JSON.parse(body) as { data: { publishEvent: { outboxId: string } } }).data.publishEvent.outboxId), answeredAt);
  }
  const store = openSqliteStore({ path: databasePath });
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

async function waitForDrain(gateway: GatewayProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ brokers { pendingEvents } }' }),
    });
    const body = (await response.json()) as { data: { brokers: { pendingEvents: number }[] } };
    if (body.data.brokers[0]!.pendingEvents === 0) return;
    if (Date.now() > deadline) throw new Error('the outbox did not drain within 2 minutes');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const brokers = wanted.length > 0 ? wanted : ['memory', 'rabbitmq', 'kafka', 'nats'];
  console.log(`publish vs { __typename }: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_MS / 1000} s each, medians`);
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  for (const broker of brokers) {
    const scope = new GatewayScope();
    const topic = `bench-${randomUUID().slice(0, 8)}`;
    const cleanup = await prepareBroker(broker, topic);
    try {
      const databasePath = scope.database();
      const gateway = await scope.start({ broker, databasePath, env: { DATABASE_SYNCHRONOUS: 'FULL' } });
      const f = await measure(gateway, topic, databasePath);
      const typename = median(f.typename.map((r) => r.perSecond));
      const publish = median(f.publish.map((r) => r.perSecond));
      const many = median(f.publishMany.map((r) => r.perSecond));
      const p = (xs: LoadResult[], key: 'p50Ms' | 'p99Ms') => median(xs.map((r) => r[key]));
      console.log(
        `${broker}: __typename ${f.typename.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
          `publishEvent ${f.publish.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
          `publishEvents(10) ${f.publishMany.map((r) => fmt(r.perSecond)).join(' / ')} req/s; ` +
          `confirm at ${f.confirm.rate} req/s over ${f.confirm.n} events`,
      );
      rows.push([
        broker,
        `${fmt(typename)} (p50 ${ms(p(f.typename, 'p50Ms'))}, p99 ${ms(p(f.typename, 'p99Ms'))})`,
        `${fmt(publish)} (p50 ${ms(p(f.publish, 'p50Ms'))}, p99 ${ms(p(f.publish, 'p99Ms'))})`,
        `${(publish / typename).toFixed(2)}×`,
        `${fmt(many)} req/s = ${fmt(many * 10)} ev/s (p99 ${ms(p(f.publishMany, 'p99Ms'))})`,
        `${ms(f.confirm.p50)} / ${ms(f.confirm.p99)} at ${fmt(f.confirm.rate)}/s`,
      ]);
    } finally {
      await cleanup();
      await scope.dispose();
    }
  }
  printTable(
    ['broker', '`{ __typename }` req/s', '`publishEvent` req/s', 'ratio', '`publishEvents` (10 events)', 'answer → confirm p50 / p99 (half load)'],
    ['l', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

runBenchmark(main);
