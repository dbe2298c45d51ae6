import { defineConfig } from 'vitest/config';

export default defineConfig({
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
