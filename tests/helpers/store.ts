import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';

/** A fresh SQLite file per test; removed with its WAL files by `cleanup`. */
export function tempDatabasePath(): string {
  return join(tmpdir(), `event-gateway-test-${randomUUID()}.db`);
}

export function removeDatabase(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

/** A store of one dialect for one test, with what the tests need to break it on purpose. */
export type TestStore = Store & {
  cleanup(): Promise<void>;
  /** Makes inserts of events of `topic` fail with a constraint error (a trigger), as a bad row would. */
  refuseTopic(topic: string): Promise<void>;
  /** Makes every write fail as "store unavailable" until the returned function is called. */
  blockWrites(): Promise<() => Promise<void>>;
};

export function openTempStore(): TestStore & { path: string } {
  const path = tempDatabasePath();
  const store = openSqliteStore({ path, synchronous: 'NORMAL', busyTimeoutMs: 50 });
  // A second connection to the same file, as another process would have.
  const other = () => new Database(path);
  return Object.assign(store, {
    async cleanup() {
      await store.close();
      removeDatabase(path);
    },
    async refuseTopic(topic: string) {
      const db = other();
      db.exec(`create trigger refuse_${topic.replace(/\W/g, '_')} before insert on outbox when new.topic = '${topic}'
               begin select raise(abort, 'refused by a constraint'); end`);
      db.close();
    },
    async blockWrites() {
      const db = other();
      db.prepare('begin immediate').run();
      return async () => {
        db.prepare('rollback').run();
        db.close();
      };
    },
  });
}

/** One store dialect the shared store suites (`tests/store/*.ts`) run against. */
export interface StoreDialect {
  readonly name: string;
  /** An empty store of its own for one test. */
  open(): Promise<TestStore>;
}

export const SQLITE_DIALECT: StoreDialect = { name: 'sqlite', open: async () => openTempStore() };
