import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql@16 ships both index.js (CJS) and index.mjs. Node (and so Pothos and Yoga) loads
    // the CJS one; without this, Vite hands test files the .mjs one and graphql refuses to mix
    // the two copies.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: keep parallelism modest so timing-sensitive broker tests are not starved.
    maxWorkers: 2,
    env: { LOG_LEVEL: 'silent' },
  },
});
