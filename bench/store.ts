/**
 * `npm run bench:store`: the store on its own, SQLite (`synchronous=FULL`) against PostgreSQL
 * (`TEST_POSTGRES_URL` as for the tests, default the local server; a database is made and dropped per scenario),
 * in one run. Appends from 64 concurrent callers (as concurrent mutations make them, so group
 * commit has company): keyless events, keyed events (on PostgreSQL each key is locked with
 * `pg_advisory_xact_lock` for the commit), keyed events handed to a local relay; then a relay's
 * claim + settle loop draining a keyed backlog. Prints events/s, medians of BENCH_ROUNDS. A
 * benchmark, not a test: it asserts nothing.
 */
import type { OutboxTaker } from '../src/store/outbox-repository.js';
import type { Store } from '../src/store/store.js';
import { benchEvents } from './events.js';
import { freshStore, type StoreKind } from './gateway-load.js';
import { fmt, machine, median, printTable, runBenchmark } from './report.js';

const APPENDS = Number(process.env['BENCH_EVENTS'] ?? 10_000);
const BACKLOG = Number(process.env['BENCH_BACKLOG'] ?? 20_000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CALLERS = 64;
const KEYS = 1000;

/** The two stores, each fresh per scenario: SQLite with `synchronous=FULL`, PostgreSQL on a new database. */
const DIALECTS: { name: string; kind: StoreKind }[] = [
  { name: 'sqlite (FULL)', kind: 'sqlite' },
  { name: 'postgres', kind: 'postgres' },
];

/** A relay that takes every row handed to it and does nothing with it. */
const sink: OutboxTaker = { owner: 'bench', leaseMs: 60_000, capacity: () => 1_000_000, take: () => {} };

type Scenario = (store: Store) => Promise<number>;

const appends =
  (keyed: boolean, handOff: boolean): Scenario =>
  async (store) => {
    const events = benchEvents('bench', APPENDS, keyed ? KEYS : 1).map((event) => (keyed ? event : { ...event, key: null }));
    if (handOff) store.outbox.handOffTo(sink);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (next < events.length) await store.outbox.append([events[next++]!]);
      }),
    );
    store.outbox.handOffTo(undefined);
    return APPENDS / ((performance.now() - started) / 1000);
  };

const drain: Scenario = async (store) => {
  const events = benchEvents('bench', BACKLOG, KEYS);
  for (let i = 0; i < events.length; i += 1000) await store.outbox.append(events.slice(i, i + 1000));
  const started = performance.now();
  let moved = 0;
  for (;;) {
    const rows = await store.outbox.claim({ owner: 'bench', limit: 256, leaseMs: 60_000 });
    if (rows.length === 0) break;
    await store.outbox.settle(
      'bench',
      rows.map((row) => ({ id: row.id, ok: true })),
    );
    moved += rows.length;
  }
  return moved / ((performance.now() - started) / 1000);
};

const SCENARIOS: [string, Scenario][] = [
  ['append, keyless', appends(false, false)],
  [`append, ${KEYS} keys`, appends(true, false)],
  [`append, ${KEYS} keys, handed to the relay`, appends(true, true)],
  ['claim 256 + settle, keyed backlog', drain],
];

runBenchmark(async () => {
  console.log(machine());
  console.log(`${APPENDS} single-event appends from ${CALLERS} callers; backlog ${BACKLOG}; medians of ${ROUNDS} rounds`);
  const rows: string[][] = [];
  for (const [label, scenario] of SCENARIOS) {
    const figures = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      // Dialects alternate within a round, so drift in the machine's load hits both alike.
      for (const dialect of DIALECTS) {
        const { store, dispose } = await freshStore(dialect.kind);
        try {
          figures.set(dialect.name, [...(figures.get(dialect.name) ?? []), await scenario(store)]);
        } finally {
          await dispose();
        }
      }
    }
    const [sqlite, postgres] = DIALECTS.map((d) => median(figures.get(d.name)!));
    rows.push([label, fmt(sqlite!), fmt(postgres!), `${(postgres! / sqlite!).toFixed(2)}×`]);
  }
  printTable(['scenario', 'sqlite ev/s', 'postgres ev/s', 'postgres ÷ sqlite'], ['l', 'r', 'r', 'r'], rows);
});
