import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/store/database.js';

/** A fresh SQLite file per test; removed with its WAL files by `cleanup`. */
export function tempDatabasePath(): string {
  return join(tmpdir(), `event-gateway-test-${randomUUID()}.db`);
}

export function removeDatabase(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

export function openTempStore(): Store & { path: string; cleanup(): void } {
  const path = tempDatabasePath();
  const store = openStore({ path, synchronous: 'NORMAL' });
  return Object.assign(store, {
    path,
    cleanup() {
      store.close();
      removeDatabase(path);
    },
  });
}
