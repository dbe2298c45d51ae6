import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { StoreUnavailableError } from '../../errors.js';
import { within } from '../../util/retrying.js';
import { tables } from './tables.js';

export type Db = PostgresJsDatabase<typeof tables>;
/** bigint ids and counts as JS numbers: 2^53 is more than this store will ever count to. */
const TYPES = { int8: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } };
export type Sql = postgres.Sql<{ int8: number }>;
export type TransactionSql = postgres.TransactionSql<{ int8: number }>;

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` (`DATABASE_URL`). Never logged as given. */
  readonly url: string;
  /**
   * Connections in the pool (the LISTEN connection and, at start, the migration connection come
   * on top).
   * @default 10
   */
  readonly maxConnections?: number;
  /**
   * How long a statement waits for a lock (a table locked by a migration or by hand, a row
   * another instance is writing) before failing with `StoreUnavailableError`, instead of holding
   * a request until the lock goes.
   * @default 5000
   */
  readonly lockTimeoutMs?: number;
  /**
   * How long opening a connection may take before the call fails with `StoreUnavailableError`.
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
}

/** The pool, shared by drizzle (typed reads) and raw postgres.js (the hot paths, as prepared statements). */
export interface PostgresDatabase {
  readonly sql: Sql;
  readonly db: Db;
  /**
   * Runs `fn` once the migrations are applied (the first call applies them; a call after a failed
   * attempt tries again). Errors that mean "the store cannot take this now" become
   * `StoreUnavailableError`; others (a constraint, a bug) pass through.
   */
  run<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** `run` inside one transaction; a rejection of `fn` rolls it back. */
  transaction<T>(what: string, fn: (tx: TransactionSql) => Promise<T>): Promise<T>;
  /**
   * Waits (up to 5 s) for calls in flight, then ends the pool; calls after it fail with
   * `StoreUnavailableError`.
   */
  close(): Promise<void>;
}

const CLOSE_WAIT_MS = 5000;
const IDLE_IN_TRANSACTION_MS = 30_000;

/**
 * Timestamps go to the server as ISO text (arrays of them as `text[]`, cast in SQL): drizzle has
 * the pool pass date values through unconverted, and raw queries share the pool.
 */
export const at = (ms: number) => new Date(ms).toISOString();

/** Migrations sit at the project root (`drizzle/postgres`), next to `src/` and `dist/`. */
const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/postgres', import.meta.url));

/**
 * Session lock held while migrating, so instances that start together migrate one after the
 * other: the others then find the migrations applied. Two int4 keys: a key space apart from the
 * per-key `pg_advisory_xact_lock(bigint)` locks of the outbox.
 */
const MIGRATION_LOCK_SQL = `select pg_advisory_lock(hashtext('event-gateway migrations'), 0)`;

/**
 * The connection settings every client of this store uses: timeouts as session settings, notices
 * (drizzle's "schema already exists, skipping") dropped.
 */
export function clientOptions(options: PostgresOptions) {
  return {
    max: options.maxConnections ?? 10,
    connect_timeout: Math.max(1, Math.ceil((options.connectTimeoutMs ?? 5000) / 1000)),
    // Idle connections are closed after a minute, so a quiet gateway does not pin server slots.
    idle_timeout: 60,
    onnotice: () => {},
    types: TYPES,
    connection: {
      application_name: 'event-gateway',
      lock_timeout: options.lockTimeoutMs ?? 5000,
      // A process that stalls inside a transaction (a paused VM) must not hold key locks and row
      // locks from the other instances for long: the server ends such a session.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    },
  };
}

export function openPostgres(options: PostgresOptions): PostgresDatabase {
  const sql = postgres(options.url, clientOptions(options));
  const db = drizzle(sql, { schema: tables });
  let migrated: Promise<void> | undefined;
  const ready = () =>
    (migrated ??= applyMigrations(options).catch((error: unknown) => {
      migrated = undefined;
      throw toStoreError('apply migrations', error);
    }));

  const inFlight = new Set<Promise<unknown>>();
  const run = <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const call = (async () => {
      try {
        await ready();
        return await fn();
      } catch (error) {
        throw toStoreError(what, error);
      }
    })();
    inFlight.add(call);
    void call.finally(() => inFlight.delete(call)).catch(() => {});
    return call;
  };
  return {
    sql,
    db,
    run,
    // `begin` types its result for callbacks that return arrays of queries; ours return values.
    transaction: <T>(what: string, fn: (tx: TransactionSql) => Promise<T>) => run(what, () => sql.begin(fn) as Promise<T>),
    async close() {
      await within(Promise.allSettled(inFlight), CLOSE_WAIT_MS);
      // No grace period of postgres.js's own: after a refused connection attempt it counts a
      // query as still running forever, and `end` would sit out its whole timeout.
      await sql.end({ timeout: 0 });
    },
  };
}

/**
 * Applies drizzle's migrations under the migration lock, on a connection of its own: a session
 * lock holds only on the connection that took it, and the pool's queries go to any connection.
 */
async function applyMigrations(options: PostgresOptions): Promise<void> {
  // No lock timeout here: an instance waiting for another's migration must wait it out.
  const client = postgres(options.url, { ...clientOptions(options), max: 1, connection: { application_name: 'event-gateway migrate', lock_timeout: 0 } });
  try {
    await client.unsafe(MIGRATION_LOCK_SQL);
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS });
  } finally {
    // Ending the session releases its lock.
    await client.end({ timeout: 0 });
  }
}

/** Why the store cannot take a call now, by SQLSTATE (see the PostgreSQL "Error Codes" appendix). */
const UNAVAILABLE_STATES: Record<string, string> = {
  '57P01': 'the database server is shutting down',
  '57P02': 'the database server crashed',
  '57P03': 'the database server is not accepting connections yet',
  '57P05': 'the connection was idle too long',
  '53300': 'the database server has too many connections',
  '53100': 'the database server is out of disk space',
  '53200': 'the database server is out of memory',
  '55P03': 'a lock was held too long',
  '57014': 'the statement was cancelled or timed out',
  '40P01': 'a deadlock was detected',
  '40001': 'a concurrent update conflicted',
  '25006': 'the database is read-only',
  '3D000': 'the database does not exist',
  '28000': 'the database refused the credentials',
  '28P01': 'the database refused the credentials',
};
/** Whole SQLSTATE classes: connection exception, insufficient resources, operator intervention, system error. */
const UNAVAILABLE_CLASSES: Record<string, string> = {
  '08': 'the connection to the database failed',
  '53': 'the database server is out of resources',
  '57': 'the database server stopped the work',
  '58': 'the database server had an I/O error',
};
/** Socket errors, and postgres.js's own codes for a connection that failed, closed or was ended. */
const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: 'the database server refused the connection',
  ECONNRESET: 'the connection to the database was reset',
  EPIPE: 'the connection to the database was reset',
  ETIMEDOUT: 'the database server did not answer',
  EHOSTUNREACH: 'the database server cannot be reached',
  ENETUNREACH: 'the database server cannot be reached',
  ENOTFOUND: 'the database host name does not resolve',
  EAI_AGAIN: 'the database host name does not resolve',
  CONNECT_TIMEOUT: 'connecting to the database timed out',
  CONNECTION_CLOSED: 'the connection to the database closed',
  CONNECTION_DESTROYED: 'the connection to the database closed',
  CONNECTION_ENDED: 'the store is closed',
};

function unavailableReason(error: unknown): { reason: string; code: string; details: Record<string, string> } | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (error instanceof postgres.PostgresError) {
    const reason = UNAVAILABLE_STATES[code] ?? UNAVAILABLE_CLASSES[code.slice(0, 2)];
    return reason === undefined ? undefined : { reason, code, details: { postgresCode: code } };
  }
  const reason = CONNECTION_CODES[code];
  return reason === undefined ? undefined : { reason, code, details: { connectionCode: code } };
}

/** True for an error that fails the whole store operation rather than one job in it. */
export function isUnavailable(error: unknown): boolean {
  return error instanceof StoreUnavailableError || unavailableReason(error) !== undefined;
}

/**
 * "Cannot reach / server shutting down / out of disk / lock held too long" become
 * `StoreUnavailableError`, retryable and shown to clients, so the message names no host and no
 * secret (the driver's own error, kept as `cause`, names host and port only). Others pass through.
 */
export function toStoreError(what: string, error: unknown): unknown {
  if (error instanceof StoreUnavailableError) return error;
  const unavailable = unavailableReason(error);
  if (!unavailable) return error;
  return new StoreUnavailableError(`could not ${what}: ${unavailable.reason} (${unavailable.code})`, { cause: error, details: unavailable.details });
}
