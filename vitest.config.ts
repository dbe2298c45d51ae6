import { defineConfig } from 'vitest/config';

/**
 * Test tiers (`npm run test:unit`, `test:brokers`, `test:faults`; `npm test` runs all three).
 * `unit` needs nothing but Node and this repository: no broker, no database server, no network
 * beyond servers a test starts itself in-process. The other two talk to a live RabbitMQ, Kafka,
 * NATS or PostgreSQL (or run nats-server / Kafka processes of their own), and may stop and start them.
 */
const BROKER_TESTS = [
  'tests/brokers/**/*.test.ts',
  'tests/conformance/{rabbitmq,kafka,nats}*.test.ts',
  'tests/store/postgres.test.ts',
  'tests/e2e/resume-on-another-instance.test.ts',
];
/** The real gateway process against every broker while it is killed, brokers stop, stores fail. */
const FAULT_TESTS = ['tests/faults/**/*.test.ts'];

/**
 * What the live tiers share: the broker harness brings the brokers up before the first test (Kafka
 * too, on a fresh machine) and fails the run when one does not answer and CI is set. One file at a
 * time, across both tiers: a file that restarts a broker must not pull it away from another.
 */
const live = { globalSetup: ['scripts/brokers/global-setup.ts'], fileParallelism: false, testTimeout: 120_000 };

export default defineConfig({
  resolve: {
    // graphql@16 ships both index.js (CJS) and index.mjs. Node (and so Pothos and Yoga) loads
    // the CJS one; without this, Vite hands test files the .mjs one and graphql refuses to mix
    // the two copies.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: keep parallelism modest so timing-sensitive broker tests are not starved.
    maxWorkers: 2,
    env: { LOG_LEVEL: 'silent' },
    reporters: ['default', './tests/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        // TEST_TIER: `requireBroker` refuses to run in this tier, so a file that needs a broker
        // fails here until it is listed above, rather than being skipped unnoticed.
        test: { name: 'unit', include: ['tests/**/*.test.ts'], exclude: [...BROKER_TESTS, ...FAULT_TESTS], env: { TEST_TIER: 'unit' } },
      },
      { extends: true, test: { name: 'brokers', include: BROKER_TESTS, ...live } },
      { extends: true, test: { name: 'faults', include: FAULT_TESTS, ...live } },
    ],
  },
});
