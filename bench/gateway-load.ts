/**
 * What the benchmarks that load a real gateway process share: the request bodies, the load
 * generator run as a child process (on one gateway, or spread over several), a broker made ready
 * for the gateway's events, waiting for the outbox to drain, and the store a gateway runs on
 * (`BENCH_STORE`: a fresh SQLite file, or a fresh PostgreSQL database made and dropped per run).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect as amqpConnect } from 'amqplib';
import { loadConfig } from '../src/config/config.js';
import { openStore, type Store, type StoreOptions } from '../src/store/store.js';
import { GatewayScope } from '../tests/helpers/gateway-process.js';
import { createTestDatabase } from '../tests/helpers/postgres.js';
import type { LoadResult, LoadSpec } from './http-load.js';
import type { SpreadResult, SpreadSpec } from './http-load-spread.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const settings = loadConfig({ ...process.env, GATEWAY_CONFIG: undefined }).brokers;

export const TYPENAME = JSON.stringify({ query: '{ __typename }' });
export const publishBody = (topic: string) =>
  JSON.stringify({
    query: 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId duplicate } }',
    variables: { i: { topic, type: 'order.created', key: 'order-{{n}}', data: { orderId: 0, total: 42.5, currency: 'EUR' } } },
  }).replace('"orderId":0', '"orderId":{{n}}');
export const publishManyBody = (topic: string) =>
  JSON.stringify({
    query: 'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { outboxId } }',
    variables: {
      i: Array.from({ length: 10 }, (_, k) => ({ topic, type: 'order.created', key: `order-{{n}}-${k}`, data: { line: k, total: 42.5 } })),
    },
  });

/** Runs a load generator script in its own process and returns what it printed. */
function runChild<R extends { errors: number; firstError: string | null }>(script: string, spec: unknown): Promise<R> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    proc.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      const result = JSON.parse(out) as R;
      if (result.errors > 0) return reject(new Error(`${result.errors} failed requests, first: ${result.firstError}`));
      resolve(result);
    });
  });
}

/** [http-load.ts](http-load.ts) against one gateway. */
export const load = (spec: LoadSpec): Promise<LoadResult> => runChild('bench/http-load.ts', spec);

/** [http-load-spread.ts](http-load-spread.ts): the connections dealt round-robin over several gateways. */
export const loadSpread = (spec: SpreadSpec): Promise<SpreadResult> => runChild('bench/http-load-spread.ts', spec);

/** What a broker needs so that the gateway's events are routable and confirmed. */
export async function prepareBroker(broker: string, topic: string): Promise<() => Promise<void>> {
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

/** Resolves once the gateway at `url` reports no pending outbox rows (2 minutes at most). */
export async function waitForDrain(url: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const response = await fetch(url, {
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

export type StoreKind = 'sqlite' | 'postgres';

/**
 * The stores a run measures, from `BENCH_STORE`: `sqlite` (the default), `postgres`, or both
 * (`sqlite,postgres`), measured one after the other in the same run. PostgreSQL is the server
 * the tests use (`TEST_POSTGRES_URL`, default the local one).
 */
export function benchStores(): StoreKind[] {
  const kinds = (process.env['BENCH_STORE'] ?? 'sqlite').split(',').map((s) => s.trim());
  for (const kind of kinds) if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`BENCH_STORE: unknown store "${kind}"; known: sqlite, postgres`);
  return kinds as StoreKind[];
}

/** A fresh database for gateway processes: how they are pointed at it, and how the bench reads it. */
export interface BenchDatabase {
  readonly kind: StoreKind;
  /** The `databasePath` for `GatewayScope.start` (ignored by a gateway with `DATABASE_URL`). */
  readonly path: string;
  readonly env: Record<string, string>;
  /** For `openStore`, to read rows back. */
  readonly storeOptions: StoreOptions;
  dispose(): Promise<void>;
}

export async function benchDatabase(kind: StoreKind, scope: GatewayScope): Promise<BenchDatabase> {
  const path = scope.database(`gateway-${Math.random().toString(36).slice(2, 8)}.db`);
  if (kind === 'sqlite') {
    // FULL is the production default: every commit is fsynced. `BENCH_SQLITE_SYNCHRONOUS=NORMAL`
    // shows what those fsyncs cost. The scope removes the file.
    const synchronous = process.env['BENCH_SQLITE_SYNCHRONOUS'] === 'NORMAL' ? 'NORMAL' : 'FULL';
    return { kind, path, env: { DATABASE_SYNCHRONOUS: synchronous }, storeOptions: { path, synchronous }, dispose: async () => undefined };
  }
  const database = await createTestDatabase();
  return { kind, path, env: { DATABASE_URL: database.url }, storeOptions: { url: database.url }, dispose: () => database.drop() };
}

/** A fresh, empty store of the given kind (on `benchDatabase`'s database), and what removes it. */
export async function freshStore(kind: StoreKind): Promise<{ store: Store; dispose(): Promise<void> }> {
  const scope = new GatewayScope();
  const database = await benchDatabase(kind, scope);
  const store = openStore(database.storeOptions);
  await store.ping();
  return {
    store,
    dispose: async () => {
      await store.close();
      await database.dispose();
      await scope.dispose();
    },
  };
}
