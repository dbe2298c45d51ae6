import type { Store } from '../store.js';
import { openSqlite, settled, type SqliteOptions } from './database.js';
import { createSqliteDeadLetterRepository } from './dead-letter-repository.js';
import { createSqliteOutboxRepository } from './outbox-repository.js';
import { createSqliteProcessedMessageRepository } from './processed-message-repository.js';

export type SqliteStoreOptions = SqliteOptions;

/** The embedded store: one SQLite file in WAL mode (`DATABASE_PATH`). */
export function openSqliteStore(options: SqliteStoreOptions): Store & { readonly path: string } {
  const database = openSqlite(options);
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  const selectOne = database.sqlite.prepare('select 1');
  return {
    dialect: 'sqlite',
    path: options.path,
    outbox: createSqliteOutboxRepository(database, { onAppend: changed }),
    deadLetters: createSqliteDeadLetterRepository(database),
    processed: createSqliteProcessedMessageRepository(database),
    ping: () => settled(() => void database.read('read', () => selectOne.get())),
    onOutboxChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => settled(() => database.close()),
  };
}
