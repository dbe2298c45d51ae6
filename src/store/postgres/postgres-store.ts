import { randomUUID } from 'node:crypto';
import { StoreUnavailableError } from '../../errors.js';
import type { Store } from '../store.js';
import { openPostgres, type PostgresOptions } from './database.js';
import { createPostgresDeadLetterRepository } from './dead-letter-repository.js';
import { listenOn } from './listener.js';
import { createPostgresOutboxRepository } from './outbox-repository.js';
import { createPostgresProcessedMessageRepository } from './processed-message-repository.js';

export type PostgresStoreOptions = PostgresOptions;

/** Where instances tell each other that outbox rows wait for a relay. */
const OUTBOX_CHANNEL = 'event_gateway_outbox';

/**
 * The shared store: one PostgreSQL database (`DATABASE_URL`) that any number of gateway instances
 * use at once. Opening connects nothing yet: the first call connects and applies the migrations
 * (call `ping()` to do that up front); a call that finds the server down fails with
 * `StoreUnavailableError`, and the next one connects again.
 *
 * `onOutboxChange` listeners hear of this instance's commits at once and of other instances'
 * through LISTEN/NOTIFY; a notification lost while the connection was down is made up for by a
 * call when it is back, and by the relay's poll.
 */
export function openPostgresStore(options: PostgresStoreOptions): Store {
  const database = openPostgres(options);
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  // This instance's own notifications come back to it too; its listeners were called already.
  const instance = randomUUID();
  const channel = listenOn(options, OUTBOX_CHANNEL, (payload) => payload !== instance && changed(), changed);
  return {
    dialect: 'postgres',
    outbox: createPostgresOutboxRepository(database, { changed, notify: { channel: OUTBOX_CHANNEL, payload: instance } }),
    deadLetters: createPostgresDeadLetterRepository(database),
    processed: createPostgresProcessedMessageRepository(database),
    // "Takes writes", not only "answers": a standby (after a failover that left the URL on the
    // old primary) or a read-only default answers `select 1` but fails every publish.
    ping: () =>
      database.run('reach the database', async () => {
        const [row] = await database.sql<{ readOnly: boolean }[]>`
          select pg_is_in_recovery() or current_setting('transaction_read_only') = 'on' as "readOnly"`;
        if (row?.readOnly) throw new StoreUnavailableError('the database is read-only (a standby, or transactions are read-only by default)');
      }),
    onOutboxChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      await Promise.all([channel.close(), database.close()]);
    },
  };
}
