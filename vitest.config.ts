import { defineConfig } from 'vitest/config';

// GPU tests use Dawn's native Node binding, which does not mix with worker_threads:
// every test file runs in its own forked process.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: {
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
    },
  },
});
