import type { DeadLetterRepository } from './dead-letter-repository.js';
import type { OutboxRepository } from './outbox-repository.js';
import type { ProcessedMessageRepository } from './processed-message-repository.js';
import { openSqliteStore, type SqliteStoreOptions } from './sqlite/sqlite-store.js';

/**
 * Where the gateway keeps what must survive: the outbox, dead letters and processed-message
 * records. One contract, one implementation per SQL dialect; every method is asynchronous and
 * may be called concurrently.
 */
export interface Store {
  readonly dialect: 'sqlite';
  readonly outbox: OutboxRepository;
  readonly deadLetters: DeadLetterRepository;
  readonly processed: ProcessedMessageRepository;
  /** Resolves when the store answers now; rejects with `StoreUnavailableError` otherwise. */
  ping(): Promise<void>;
  /**
   * Calls `listener` after outbox rows were committed or put back to PENDING, so a sleeping relay
   * wakes at once instead of at its next poll. Returns a function that removes the listener.
   */
  onOutboxChange(listener: () => void): () => void;
  /** Closes the connection; calls after it fail. */
  close(): Promise<void>;
}

export type StoreOptions = SqliteStoreOptions;

export function openStore(options: StoreOptions): Store {
  return openSqliteStore(options);
}
