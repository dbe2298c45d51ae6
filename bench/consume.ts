/**
 * `npm run bench:consume [-- memory rabbitmq kafka nats]`: a durable consumer delivering to a
 * webhook, against a plain client loop POSTing the same bodies to the same webhook with the same
 * number of requests in flight, in one run.
 *
 * Per broker and prefetch (10, then 50): a real gateway process with one consumer whose webhook
 * is a sink in a process of its own (`webhook-sink.ts`, answers 204 at once). The sink holds its
 * answers while N events are published (`publishEvents`, batches of 50 on 16 keys) and the relay
 * hands them to the broker, so a backlog waits at the broker; then it lets go and the clock runs
 * until every event was answered once. The plain loops (`webhook-loop.ts`: `fetch`, and
 * `node:http` with a keep-alive agent) POST N bodies with the same number in flight. Prints
 * deliveries/s and the ratios. A benchmark, not a test: it prints figures and asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { GatewayScope, type GatewayProcess } from '../tests/helpers/gateway-process.js';
import { benchEvents } from './events.js';
import { buildGateway, fmt, machine, printTable, runBenchmark } from './report.js';
import type { SinkStats } from './webhook-sink.js';
import type { LoopSpec } from './webhook-loop.js';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 20_000);
const PREFETCHES = [10, 50];
const KEYS = 16;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** `BENCH_CPU_PROF=<dir>`: write a CPU profile of each gateway process there (node --cpu-prof). */
const PROFILE_DIR = process.env['BENCH_CPU_PROF'];

/** Starts a bench script in a process of its own and resolves with its first line of JSON. */
function child<T>(script: string, arg?: unknown): { process: ChildProcess; result: Promise<T> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...(arg === undefined ? [] : [JSON.stringify(arg)])], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const result = new Promise<T>((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline >= 0) resolve(JSON.parse(out.slice(0, newline)) as T);
    });
    proc.once('exit', (code) => reject(new Error(`${script} exited with ${code} before answering`)));
  });
  return { process: proc, result };
}

class Sink {
  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<Sink> {
    const started = child<{ port: number }>('bench/webhook-sink.ts');
    const { port } = await started.result;
    return new Sink(started.process, `http://127.0.0.1:${port}/events`);
  }

  async control(action: 'hold' | 'release' | 'reset'): Promise<void> {
    await fetch(new URL(`/control/${action}`, this.url), { method: 'POST' });
  }

  async stats(): Promise<SinkStats> {
    return (await (await fetch(new URL('/control/stats', this.url))).json()) as SinkStats;
  }

  close(): void {
    this.proc.kill();
  }
}

async function gql(gateway: GatewayProcess, query: string, variables?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors).slice(0, 500)}`);
  return body.data!;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deliveries/s of one gateway consumer draining a backlog of EVENTS events. */
async function measureConsumer(broker: string, prefetch: number, sink: Sink): Promise<number> {
  const scope = new GatewayScope();
  const topic = `bench-${randomUUID().slice(0, 8)}`;
  try {
    await sink.control('reset');
    await sink.control('hold');
    const gateway = await scope.start({
      entry: 'built',
      broker,
      databasePath: scope.database(),
      nodeArgs: PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [],
      consumers: [{ name: `bench-consumer-${randomUUID().slice(0, 8)}`, topic, webhook: { url: sink.url, timeoutMs: 120_000 }, prefetch }],
    });
    const inputs = benchEvents(topic, EVENTS, KEYS).map(({ topic: t, type, key, data }) => ({ topic: t, type, key, data }));
    for (let i = 0; i < inputs.length; i += 50) {
      await gql(gateway, 'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { outboxId } }', { i: inputs.slice(i, i + 50) });
    }
    await waitUntil(
      async () => ((await gql(gateway, '{ brokers { pendingEvents } }')).brokers as { pendingEvents: number }[])[0]!.pendingEvents === 0,
      120_000,
      'the relay to drain the outbox',
    );
    await sink.control('release');
    await waitUntil(async () => (await sink.stats()).unique >= EVENTS, 300_000, `${EVENTS} deliveries`);
    const stats = await sink.stats();
    // A graceful stop, so that a profile (if asked for) is written.
    await gateway.terminate(30_000);
    return EVENTS / ((stats.lastAt - stats.releasedAt) / 1000);
  } finally {
    await sink.control('release');
    await scope.dispose();
  }
}

async function measureLoop(sink: Sink, spec: Omit<LoopSpec, 'url' | 'events'>): Promise<number> {
  await sink.control('reset');
  const run = child<{ perSecond: number }>('bench/webhook-loop.ts', { url: sink.url, events: EVENTS, ...spec });
  return (await run.result).perSecond;
}

async function main(): Promise<void> {
  buildGateway();
  const wanted = process.argv.slice(2);
  const brokers = wanted.length > 0 ? wanted : ['memory', 'rabbitmq', 'kafka', 'nats'];
  console.log(`durable consumer → webhook vs a plain client loop: ${EVENTS} events on ${KEYS} keys, prefetch ${PREFETCHES.join(' and ')}`);
  console.log(`${machine()}\n`);
  const sink = await Sink.start();
  const rows: string[][] = [];
  try {
    const loops = new Map<number, { fetch: number; http: number }>();
    for (const prefetch of PREFETCHES) {
      // Warm both clients once, then measure.
      await measureLoop(sink, { inFlight: prefetch, client: 'fetch' });
      const fetchRate = await measureLoop(sink, { inFlight: prefetch, client: 'fetch' });
      await measureLoop(sink, { inFlight: prefetch, client: 'node:http' });
      const httpRate = await measureLoop(sink, { inFlight: prefetch, client: 'node:http' });
      loops.set(prefetch, { fetch: fetchRate, http: httpRate });
      console.log(`plain loop, ${prefetch} in flight: fetch ${fmt(fetchRate)}/s, node:http ${fmt(httpRate)}/s`);
    }
    for (const broker of brokers) {
      const rates: number[] = [];
      for (const prefetch of PREFETCHES) {
        const rate = await measureConsumer(broker, prefetch, sink);
        rates.push(rate);
        const loop = loops.get(prefetch)!;
        console.log(
          `${broker}, prefetch ${prefetch}: ${fmt(rate)} deliveries/s (${(rate / loop.fetch).toFixed(2)}× fetch loop, ${(rate / loop.http).toFixed(2)}× node:http loop)`,
        );
        rows.push([
          broker,
          String(prefetch),
          fmt(rate),
          fmt(loop.fetch),
          `${(rate / loop.fetch).toFixed(2)}×`,
          fmt(loop.http),
          `${(rate / loop.http).toFixed(2)}×`,
        ]);
      }
      console.log(`${broker}: prefetch 50 ÷ prefetch 10 = ${(rates[1]! / rates[0]!).toFixed(2)}`);
    }
  } finally {
    sink.close();
  }
  printTable(
    ['broker', 'prefetch', 'gateway deliveries/s', '`fetch` loop/s', 'gateway ÷ fetch', '`node:http` loop/s', 'gateway ÷ node:http'],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
    rows,
  );
}

runBenchmark(main);
