import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { StoreUnavailableError } from '../errors.js';
import { tables } from './tables.js';

export type Db = BetterSQLite3Database<typeof tables>;

export interface StoreOptions {
  /** SQLite file, or `:memory:`. */
  path: string;
  /**
   * SQLite `synchronous` pragma. `FULL` fsyncs every commit, so a committed outbox row survives
   * power loss, not only a crash of the process.
   * @default 'FULL'
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * How long a writer waits for another process's write lock before failing with
   * `StoreUnavailableError`. The wait blocks the event loop (the driver is synchronous), so it is
   * kept short: a longer stall freezes every request, subscription and broker heartbeat of the
   * process, and an HTTP request that arrived on a keep-alive connection meanwhile is reset when
   * the stall outlasts the server's keep-alive timeout, instead of getting its answer.
   * @default 250
   */
  busyTimeoutMs?: number;
}

export interface Store {
  readonly db: Db;
  readonly sqlite: Database.Database;
  /**
   * Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so no upgrade
   * deadlock). `relaxed` skips the fsync for bookkeeping that can be redone: an OS crash may
   * forget it (the relay then publishes an event again), never an event. The next durable commit
   * fsyncs the log, relaxed commits included.
   */
  transaction<T>(fn: () => T, options?: { relaxed?: boolean }): T;
  /** Cheap round trip used by the readiness check. */
  ping(): void;
  close(): void;
}

/** The migrations folder sits at the project root, next to `src/` and `dist/`. */
const MIGRATIONS = fileURLToPath(new URL('../../drizzle', import.meta.url));

export function openStore(options: StoreOptions): Store {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const sqlite = guard('open the database', () => new Database(options.path));
  const durable = options.synchronous ?? 'FULL';
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${durable}`);
  sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 250}`);
  sqlite.pragma('foreign_keys = ON');
  const db = drizzle(sqlite, { schema: tables });
  guard('apply migrations', () => migrate(db, { migrationsFolder: MIGRATIONS }));
  let current: 'FULL' | 'NORMAL' = durable;
  // Prepared once: durable and relaxed writes alternate on the hot path (append, claim, settle).
  const setSynchronous = { FULL: sqlite.prepare('pragma synchronous = FULL'), NORMAL: sqlite.prepare('pragma synchronous = NORMAL') };
  const selectOne = sqlite.prepare('select 1');
  // The pragma cannot change inside a transaction; transactions here are synchronous, so
  // setting it right before BEGIN is safe.
  const useSynchronous = (mode: 'FULL' | 'NORMAL') => {
    if (current !== mode) {
      setSynchronous[mode].run();
      current = mode;
    }
  };
  return {
    db,
    sqlite,
    transaction: (fn, txOptions) =>
      guard('write', () => {
        useSynchronous(txOptions?.relaxed ? 'NORMAL' : durable);
        return sqlite.transaction(fn).immediate();
      }),
    ping: () => guard('read', () => selectOne.get()),
    close: () => sqlite.close(),
  };
}

/** SQLite result codes that mean "the store cannot take this now", as opposed to a bug. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|NOMEM|CORRUPT|NOTADB|PROTOCOL)/;

/**
 * Runs a store operation, turning "busy / disk full / I/O error" into `StoreUnavailableError`
 * so that callers (and GraphQL clients) get a clear, retryable error. Other errors pass through.
 */
export function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toStoreError(what, error);
  }
}

function toStoreError(what: string, error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && UNAVAILABLE.test(code)) {
    const reason = code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'the store is busy' : 'the store cannot be written';
    return new StoreUnavailableError(`could not ${what}: ${reason} (${code})`, { cause: error, details: { sqliteCode: code } });
  }
  return error;
}
