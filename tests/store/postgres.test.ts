import { requireBroker } from '../helpers/brokers.js';
import { POSTGRES_DIALECT, POSTGRES_HOST, POSTGRES_PORT } from '../helpers/postgres.js';
import { defineDeadLetterRepositorySuite } from './dead-letter-repository.js';
import { defineOutboxRepositorySuite } from './outbox-repository.js';
import { definePostgresSuite } from './postgres.js';
import { defineProcessedMessageRepositorySuite } from './processed-message-repository.js';
import { definePruneSuite } from './prune.js';

// The shared store suites against a fresh PostgreSQL database per test, then what only a shared
// server can show: several instances migrating, claiming and waking each other at once.
if (await requireBroker('PostgreSQL', POSTGRES_HOST, POSTGRES_PORT)) {
  defineOutboxRepositorySuite(POSTGRES_DIALECT);
  defineDeadLetterRepositorySuite(POSTGRES_DIALECT);
  defineProcessedMessageRepositorySuite(POSTGRES_DIALECT);
  definePruneSuite(POSTGRES_DIALECT);
  definePostgresSuite();
}
