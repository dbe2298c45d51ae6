import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { StoreUnavailableError } from '../../errors.js';
import { tables } from './tables.js';

export type Db = BetterSQLite3Database<typeof tables>;

export interface SqliteOptions {
  /** SQLite file, or `:memory:`. */
  readonly path: string;
  /**
   * SQLite `synchronous` pragma. `FULL` fsyncs every commit, so a committed outbox row survives
   * power loss, not only a crash of the process.
   * @default 'FULL'
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /**
   * How long a writer waits for another process's write lock before failing with
   * `StoreUnavailableError`. The wait blocks the event loop (the driver is synchronous), so it is
   * kept short: a longer stall freezes every request, subscription and broker heartbeat of the
   * process, and an HTTP request that arrived on a keep-alive connection meanwhile is reset when
   * the stall outlasts the server's keep-alive timeout, instead of getting its answer.
   * @default 250
   */
  readonly busyTimeoutMs?: number;
}

/** One SQLite connection with the gateway's pragmas and migrations applied. */
export interface SqliteDatabase {
  readonly db: Db;
  readonly sqlite: Database.Database;
  /**
   * Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so no upgrade
   * deadlock). `relaxed` skips the fsync for bookkeeping that can be redone: an OS crash may
   * forget it (the relay then publishes an event again), never an event. The next durable commit
   * fsyncs the log, relaxed commits included. Errors that mean "the store cannot take this now"
   * become `StoreUnavailableError`.
   */
  write<T>(fn: () => T, options?: { relaxed?: boolean }): T;
  /** Runs a read, with the same error translation as `write`. */
  read<T>(what: string, fn: () => T): T;
  close(): void;
}

/** Migrations sit at the project root (`drizzle/sqlite`), next to `src/` and `dist/`. */
const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/sqlite', import.meta.url));

export function openSqlite(options: SqliteOptions): SqliteDatabase {
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
    write: (fn, txOptions) =>
      guard('write', () => {
        useSynchronous(txOptions?.relaxed ? 'NORMAL' : durable);
        return sqlite.transaction(fn).immediate();
      }),
    read: guard,
    close: () => sqlite.close(),
  };
}

/** Hands the outcome of a synchronous store call over as a promise (the repositories are async). */
export function settled<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** SQLite result codes that mean "the store cannot take this now", as opposed to a bug. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|NOMEM|CORRUPT|NOTADB|PROTOCOL)/;

/** True for an error that fails the whole store operation rather than one job in it. */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNAVAILABLE.test(code);
}

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
  if (error instanceof StoreUnavailableError || !isUnavailable(error)) return error;
  const code = (error as { code: string }).code;
  const reason = code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') ? 'the store is busy' : 'the store cannot be written';
  return new StoreUnavailableError(`could not ${what}: ${reason} (${code})`, { cause: error, details: { sqliteCode: code } });
}
