import { defineConfig } from 'vitest/config';

/** Tests that talk to a live RabbitMQ, Kafka, NATS or PostgreSQL, and may stop and start it. */
const LIVE_BROKER_TESTS = [
  'tests/brokers/**/*.test.ts',
  'tests/conformance/{rabbitmq,kafka,nats}*.test.ts',
  'tests/faults/**/*.test.ts',
  'tests/store/postgres.test.ts',
];

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
        test: { name: 'core', include: ['tests/**/*.test.ts'], exclude: LIVE_BROKER_TESTS },
      },
      {
        extends: true,
        // One file at a time: a file that restarts a broker must not pull it away from another.
        test: { name: 'brokers', include: LIVE_BROKER_TESTS, fileParallelism: false, testTimeout: 120_000 },
      },
    ],
  },
});
