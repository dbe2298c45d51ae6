import type { DeadLetterRepository } from './dead-letter-repository.js';
import type { OutboxRepository } from './outbox-repository.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/postgres-store.js';
import type { ProcessedMessageRepository } from './processed-message-repository.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';

/**
 * Where the gateway keeps what must survive: the outbox, dead letters and processed-message
 * records. One contract, one implementation per SQL dialect; every method is asynchronous and
 * may be called concurrently.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly outbox: OutboxRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly processed: ProcessedMessageRepository;
  /**
   * Resolves when the store answers now; rejects with `StoreUnavailableError` otherwise. The first
   * call on PostgreSQL also applies the migrations, so a gateway pings before it serves.
   */
  ping(): Promise<void>;
  /**
   * Calls `listener` after outbox rows were committed or put back to PENDING, so a sleeping relay
   * wakes at once instead of at its next poll: at once for this instance's commits, and on
   * PostgreSQL also for other instances' (LISTEN/NOTIFY; a notification lost while disconnected is
   * made up for by one call once listening again). Returns a function that removes the listener.
   */
  onOutboxChange(listener: () => void): () => void;
  /** Closes the connection; calls after it fail. */
  close(): Promise<void>;
}

/** A `url` (`DATABASE_URL`) selects PostgreSQL; without one, the SQLite file at `path`. */
export type StoreOptions = PostgresStoreOptions | (SqliteStoreOptions & { readonly url?: undefined });

/**
 * Opens the store the options name. Synchronous for both dialects: PostgreSQL connects (and
 * migrates) on its first call, so `buildApp` stays synchronous and `start()` pings.
 */
export function openStore(options: StoreOptions): Store {
  return options.url !== undefined ? openPostgresStore(options) : openSqliteStore(options);
}
