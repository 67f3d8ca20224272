import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    // e2e tests spawn the CLI several times per test; each start loads the cloud SDKs.
    testTimeout: 60_000,
    // Tests never reach beyond 127.0.0.1; keep cloud SDKs from probing instance metadata.
    env: {
      AWS_EC2_METADATA_DISABLED: 'true',
      METADATA_SERVER_DETECTION: 'none',
      NO_COLOR: '1',
    },
  },
});
