import { SQLITE_DIALECT } from '../helpers/store.js';
import { defineDeadLetterRepositorySuite } from './dead-letter-repository.js';
import { defineOutboxRepositorySuite } from './outbox-repository.js';
import { defineProcessedMessageRepositorySuite } from './processed-message-repository.js';
import { definePruneSuite } from './prune.js';

// The shared store suites against an SQLite file per test; `postgres.test.ts` is the twin.
defineOutboxRepositorySuite(SQLITE_DIALECT);
defineDeadLetterRepositorySuite(SQLITE_DIALECT);
defineProcessedMessageRepositorySuite(SQLITE_DIALECT);
definePruneSuite(SQLITE_DIALECT);
