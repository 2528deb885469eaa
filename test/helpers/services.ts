/**
 * Service-backed suites (real PostgreSQL / Redis). A plain `npm test` without DATABASE_URL /
 * REDIS_URL skips only these and says so; `.ci/run` sets both and fails if they are unreachable.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe } from 'vitest';

export const DATABASE_URL = process.env.DATABASE_URL;
export const REDIS_URL = process.env.REDIS_URL;

const warned = new Set<string>();
function warnSkip(what: string, env: string): void {
  if (warned.has(env)) return;
  warned.add(env);
  process.stderr.write(`[meshward tests] ${env} is not set: skipping the ${what}-backed suites\n`);
}

/** `describe` that runs only when DATABASE_URL is set. */
export const describeWithPostgres: typeof describe = (DATABASE_URL ? describe : (((name: string, ...rest: unknown[]) => {
  warnSkip('PostgreSQL', 'DATABASE_URL');
  return (describe.skip as (...a: unknown[]) => unknown)(name, ...rest);
}) as unknown as typeof describe));

/** `describe` that runs only when REDIS_URL is set. */
export const describeWithRedis: typeof describe = (REDIS_URL ? describe : (((name: string, ...rest: unknown[]) => {
  warnSkip('Redis', 'REDIS_URL');
  return (describe.skip as (...a: unknown[]) => unknown)(name, ...rest);
}) as unknown as typeof describe));

/**
 * A schema name of its own (`<prefix>_<10 hex>`) for one test; `cleanupLater` receives what drops it
 * (with everything in it) at the end.
 */
export function freshPgSchema(prefix: string, cleanupLater: (drop: () => Promise<void>) => void): string {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  cleanupLater(async () => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });
  return schema;
}
