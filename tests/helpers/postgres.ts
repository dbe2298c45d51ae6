import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { harnessSettings } from '../../scripts/brokers/index.js';
import { openPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/postgres-store.js';
import type { StoreDialect, TestStore } from './store.js';

/** The server the PostgreSQL tests use; each test gets a database of its own on it. */
export const POSTGRES_URL = harnessSettings().postgresUrl;
export const POSTGRES_HOST = new URL(POSTGRES_URL).hostname;
export const POSTGRES_PORT = Number(new URL(POSTGRES_URL).port || 5432);

/** A short lock timeout, so that `blockWrites` turns into `StoreUnavailableError` quickly. */
const TEST_LOCK_TIMEOUT_MS = 200;

/** A connection to the server's maintenance database, for CREATE/DROP DATABASE. */
const admin = () => postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });

/** An empty database of its own (`t_<uuid>`); returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${randomUUID().replace(/-/g, '')}`;
  const sql = admin();
  try {
    await sql.unsafe(`create database ${name}`);
  } finally {
    await sql.end();
  }
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropping = admin();
      try {
        await dropping.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await dropping.end();
      }
    },
  };
}

/** Runs `fn` on a connection of its own to `url`, as another process would. */
export async function withConnection<T>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/** A store on a fresh database, migrated, with what the shared suites need to break it on purpose. */
export async function openTempPostgresStore(options: Partial<PostgresStoreOptions> = {}): Promise<TestStore & { url: string }> {
  const database = await createTestDatabase();
  const store = openPostgresStore({ url: database.url, lockTimeoutMs: TEST_LOCK_TIMEOUT_MS, maxConnections: 4, ...options });
  await store.ping();
  return Object.assign(store, {
    url: database.url,
    async cleanup() {
      await store.close();
      await database.drop();
    },
    refuseTopic: (topic: string) =>
      withConnection(database.url, async (sql) => {
        const name = `refuse_${topic.replace(/\W/g, '_')}`;
        await sql.unsafe(`
          create function ${name}() returns trigger language plpgsql as $$
          begin raise exception 'refused by a constraint' using errcode = 'check_violation'; end $$`);
        await sql.unsafe(`create trigger ${name} before insert on outbox for each row when (new.topic = '${topic}') execute function ${name}()`);
      }),
    async blockWrites() {
      // Held by another connection until unblocked: writes wait for it and give up after the
      // store's lock timeout, as they would behind a long migration.
      const sql = postgres(database.url, { max: 1, onnotice: () => {} });
      await sql.unsafe('begin');
      await sql.unsafe('lock table outbox, dead_letters, processed_messages in exclusive mode');
      return async () => {
        await sql.unsafe('commit');
        await sql.end();
      };
    },
  });
}

export const POSTGRES_DIALECT: StoreDialect = { name: 'postgres', open: () => openTempPostgresStore() };

/**
 * Stops the machine's PostgreSQL (`pg_ctlcluster … stop -m fast`: connections are cut, as in a
 * crash or a failover), keeps it down while `whileDown` runs, then starts it again and resolves
 * once it accepts connections; starts it again even when `whileDown` throws.
 */
export async function restartPostgres<T>(whileDown: () => Promise<T>): Promise<T> {
  const [version, cluster] = (await run('pg_lsclusters', ['--no-header'])).trim().split(/\s+/);
  if (!version || !cluster) throw new Error('pg_lsclusters lists no cluster');
  await run('pg_ctlcluster', [version, cluster, 'stop', '-m', 'fast']);
  try {
    return await whileDown();
  } finally {
    await run('pg_ctlcluster', [version, cluster, 'start']);
    await waitForPostgres(60_000);
  }
}

/** Resolves once the server answers; rejects with its last refusal after `timeoutMs`. */
async function waitForPostgres(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withConnection(POSTGRES_URL, (sql) => sql`select 1`);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}
