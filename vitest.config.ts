import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Ceph RGW and Redis, started once for the run (test/support/services.ts)
    globalSetup: ['test/support/services.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end files start their own servers; two cores: keep parallel files low.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
