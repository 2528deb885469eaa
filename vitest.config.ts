import { defineConfig } from 'vitest/config';

// The default suite: everything except tests that need PostgreSQL/Redis when those are absent.
// Service-backed suites (`*.services.test.ts`) skip themselves when DATABASE_URL/REDIS_URL are unset.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
