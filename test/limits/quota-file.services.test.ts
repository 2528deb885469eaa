/**
 * `<data>/limits/quotas.db` exists only when SQLite holds quotas: the default (no --database-url),
 * or a QuotaPolicy that says `store: sqlite`. With PostgreSQL as the quota store, serve leaves no
 * SQLite quota file in the data dir (replicas share nothing through it).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createLimitsCapability } from '../../src/limits/index.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';

const quotaPolicy = (store: string) => `apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: daily, namespace: shop }
spec:
  subject: { from: requestPrincipal }
  limit: 100
  period: day
  store: ${store}
`;

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

/** Starts the limits capability; returns the path quotas.db would have. */
async function serve(store: string, databaseUrl?: string): Promise<string> {
  const configDir = writeConfigDir({ 'quota.yaml': quotaPolicy(store) });
  const dataDir = tempDir('mw-quota-file-');
  dirs.push(configDir, dataDir);
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(databaseUrl ? { databaseUrl } : {}) },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [createLimitsCapability] },
  );
  running.push(mw);
  await mw.start();
  return path.join(dataDir, 'limits', 'quotas.db');
}

describe('quotas.db with the default quota store', () => {
  it('is created when no database is configured (store auto is SQLite)', async () => {
    expect(existsSync(await serve('auto'))).toBe(true);
  });
});

describeWithPostgres('quotas.db with PostgreSQL as the quota store', () => {
  it('is not created when quotas go to PostgreSQL (store auto with --database-url)', async () => {
    expect(existsSync(await serve('auto', DATABASE_URL))).toBe(false);
  });

  it('is not created with store: postgres', async () => {
    expect(existsSync(await serve('postgres', DATABASE_URL))).toBe(false);
  });

  it('is created when a QuotaPolicy asks for store: sqlite, even with a database', async () => {
    expect(existsSync(await serve('sqlite', DATABASE_URL))).toBe(true);
  });
});
