import { defineConfig } from 'vitest/config';

// GPU tests use Dawn's native Node binding, which does not mix with worker_threads:
// every test file runs in a forked process.
// The in-process GPU tests share one process and its engine (tests/helpers/gpu.ts), so a pipeline
// compiled by one file serves the next: on SwiftShader, compiling the pipelines (the NF4 matmul's
// ~2 s each) was most of these files' time. Their files release what they allocate and share no
// other state. The rest (pure, CLI, browser) keep a fresh process per file.
const SHARED_GPU = ['tests/{engine,model,train,eval,app}/**/*.gpu.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: {
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
    },
    projects: [
      { extends: true, test: { name: 'gpu', include: SHARED_GPU, isolate: false } },
      { extends: true, test: { name: 'isolated', include: ['tests/**/*.test.ts'], exclude: SHARED_GPU } },
    ],
  },
});
