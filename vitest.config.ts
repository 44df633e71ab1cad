import { defineConfig } from 'vitest/config';

// Two projects: `unit` is pure and parallel; `integration` runs real servers (its own PostgreSQL
// cluster, TLS material, Keyless as a child process) one file at a time.
export default defineConfig({
  test: {
    // The JSON report gives .ci/run its plain "N passed, N failed" closing line.
    reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
