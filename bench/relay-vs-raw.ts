/**
 * `npm run bench [-- rabbitmq kafka nats memory]`: for each broker, in one run, the relay
 * draining N outbox rows against the broker's plain client publishing the same N events with the
 * same durability (confirms / acks=-1 / JetStream acks), the same batch size and the same number
 * of batches in flight. Prints events/s for both and the ratio relay ÷ raw. The outbox is SQLite
 * (`synchronous=FULL`); `BENCH_STORE=postgres` drains a fresh PostgreSQL database instead (made
 * and dropped per round), `BENCH_STORE=sqlite,postgres` both, alternating within each round. A
 * benchmark, not a test: it asserts nothing and prints figures.
 */
import { randomUUID } from 'node:crypto';
import { benchEvents } from './events.js';
import { Relay } from '../src/relay/relay.js';
import type { GatewayEvent } from '../src/events/event.js';
import { silentLogger } from '../src/util/logger.js';
import { Signal } from '../src/util/signal.js';
import { benchStores, freshStore, type StoreKind } from './gateway-load.js';
import { fmt, machine, median, printTable, runBenchmark } from './report.js';
import { BENCH_TARGETS, type BenchTarget } from './targets.js';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 20_000);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 256);
const IN_FLIGHT = 2;
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

const makeEvents = benchEvents;

/** Publishes `events` in batches of BATCH with at most IN_FLIGHT batches awaiting confirms. */
async function windowed(events: readonly GatewayEvent[], publish: (batch: GatewayEvent[]) => Promise<void>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < events.length; i += BATCH) {
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    const p = publish(events.slice(i, i + BATCH)).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

async function measureRaw(target: BenchTarget, events: GatewayEvent[]): Promise<number> {
  const started = performance.now();
  await windowed(events, (batch) => target.rawPublish(batch));
  return events.length / ((performance.now() - started) / 1000);
}

async function measureRelay(target: BenchTarget, events: GatewayEvent[], kind: StoreKind): Promise<number> {
  const { store, dispose } = await freshStore(kind);
  try {
    const { outbox } = store;
    for (let i = 0; i < events.length; i += 1000) await outbox.append(events.slice(i, i + 1000));
    const relay = new Relay(
      { outbox, broker: target.broker, wake: new Signal(), logger: silentLogger },
      { batchSize: BATCH, concurrency: IN_FLIGHT, pollIntervalMs: 1000 },
    );
    const started = performance.now();
    relay.start();
    while (relay.stats.published < events.length) {
      if (relay.breaker.state !== 'CLOSED') throw new Error(`relay circuit ${relay.breaker.state}: ${relay.breaker.lastReason}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const seconds = (performance.now() - started) / 1000;
    await relay.stop();
    return events.length / seconds;
  } finally {
    await dispose();
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  // The memory broker is measured only on request: its "raw client" is a function call, so the
  // ratio says nothing about the relay.
  const names = wanted.length > 0 ? wanted : Object.keys(BENCH_TARGETS).filter((name) => name !== 'memory');
  const stores = benchStores();
  console.log(
    `relay vs raw client: ${EVENTS} events per run, batches of ${BATCH}, ${IN_FLIGHT} in flight, median of ${ROUNDS} rounds; outbox on ${stores.join(', ')}`,
  );
  console.log(`${machine()}\n`);
  const rows: string[][] = [];
  for (const name of names) {
    const factory = BENCH_TARGETS[name];
    if (!factory) throw new Error(`unknown broker "${name}"; known: ${Object.keys(BENCH_TARGETS).join(', ')}`);
    const topic = `bench-${randomUUID().slice(0, 8)}`;
    const target = await factory(topic);
    try {
      // Warm up connections, JIT and broker-side topology on both paths.
      await measureRaw(target, makeEvents(topic, Math.min(2000, EVENTS)));
      for (const kind of stores) await measureRelay(target, makeEvents(topic, Math.min(2000, EVENTS)), kind);
      const raw: number[] = [];
      const relayed = new Map<StoreKind, number[]>(stores.map((kind) => [kind, []]));
      for (let round = 0; round < ROUNDS; round++) {
        raw.push(await measureRaw(target, makeEvents(topic, EVENTS)));
        for (const kind of stores) {
          relayed.get(kind)!.push(await measureRelay(target, makeEvents(topic, EVENTS), kind));
          await target.drain?.();
        }
      }
      const row = [name, target.durability, fmt(median(raw))];
      for (const kind of stores) {
        const ratio = median(relayed.get(kind)!) / median(raw);
        row.push(fmt(median(relayed.get(kind)!)), `${ratio.toFixed(2)}×`);
        console.log(
          `${name} (${kind}): raw ${raw.map(fmt).join(' / ')} ev/s; relay ${relayed.get(kind)!.map(fmt).join(' / ')} ev/s; ratio ${ratio.toFixed(2)}`,
        );
      }
      if (stores.length === 2) row.push(`${(median(relayed.get('postgres')!) / median(relayed.get('sqlite')!)).toFixed(2)}×`);
      rows.push(row);
    } finally {
      await target.close();
    }
  }
  printTable(
    [
      'broker',
      'durability (both paths)',
      'raw client ev/s',
      ...stores.flatMap((kind) => [`relay ev/s (${kind})`, `relay ÷ raw (${kind})`]),
      ...(stores.length === 2 ? ['relay: postgres ÷ sqlite'] : []),
    ],
    ['l', 'l', 'r', ...stores.flatMap(() => ['r', 'r'] as const), ...(stores.length === 2 ? (['r'] as const) : [])],
    rows,
  );
}

runBenchmark(main);
