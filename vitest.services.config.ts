import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

// `npm run test:services`: only the suites that need PostgreSQL and Redis (`*.services.test.ts`).
// They skip themselves (with a message) unless DATABASE_URL and REDIS_URL are set.
export default defineConfig({
  test: { ...base.test, include: ['test/**/*.services.test.ts'] },
});
