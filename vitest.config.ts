import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests (the "@gradpool/source"
// export condition), so `vitest` needs no build; spawned processes run the built dist/.
// The rest are vite's defaultServerConditions.
const conditions = ['@gradpool/source', 'module', 'node', 'development|production'];
const resolve = { conditions };
const ssr = { resolve: { conditions, externalConditions: ['@gradpool/source'] } };
// NestJS needs decorator metadata, which esbuild does not emit.
const withSwc = () => swc.vite({ module: { type: 'es6' } });

export default defineConfig({
  test: {
    globalSetup: ['./libs/testing/src/global-setup.ts'],
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: 'unit',
          include: ['libs/*/src/**/*.test.ts', 'apps/worker/src/**/*.test.ts', 'apps/demo/src/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        plugins: [withSwc()],
        test: { name: 'coordinator', include: ['apps/coordinator/src/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        resolve,
        ssr,
        plugins: [withSwc()],
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        resolve,
        ssr,
        plugins: [withSwc()],
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          // End-to-end suites start several processes each; run their files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
