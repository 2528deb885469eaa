import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability, openAuditStore, sqliteFile, verifyChain } from '../../src/audit/index.ts';
import { PostgresAuditStore } from '../../src/audit/postgres.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import type { CapabilityFactory } from '../../src/server/capability.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

const HOUR = 3_600_000;
const dirs: string[] = [];
const running: Meshward[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(audit: Record<string, unknown>): { dir: string; configDir: string; dataDir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-cap-'));
  dirs.push(dir);
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), `apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  audit: ${JSON.stringify(audit)}\n`);
  return { dir, configDir, dataDir: path.join(dir, 'data') };
}

async function serve(paths: { configDir: string; dataDir: string }, clock: FakeClock, extra: { databaseUrl?: string; factory?: CapabilityFactory } = {}): Promise<{ mw: Meshward; audit: AuditCapability }> {
  const mw = await createMeshward(
    { configDir: paths.configDir, dataDir: paths.dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(extra.databaseUrl ? { databaseUrl: extra.databaseUrl } : {}) },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [extra.factory ?? createAuditCapability] },
  );
  await mw.start();
  return { mw, audit: mw.capability<AuditCapability>('audit')! };
}

describe('audit capability', () => {
  it('flushes queued records on graceful stop', async () => {
    resetDecisions();
    const paths = setup({});
    const { mw, audit } = await serve(paths, new FakeClock(T0));
    for (let i = 0; i < 25; i++) expect(audit.append(decision())).toBe(true);
    expect(audit.stats().written).toBe(0);
    await mw.stop();
    const store = await openAuditStore({ dataDir: paths.dataDir, readonly: true });
    expect((await store.head()).seq).toBe(25);
    expect((await verifyChain(store)).ok).toBe(true);
    await store.close();
  });

  it('applies retention at start and periodically without breaking verification', async () => {
    resetDecisions();
    const paths = setup({ retention: '2h' });
    const clock = new FakeClock(T0 + 10 * HOUR);
    const { mw, audit } = await serve(paths, clock);
    running.push(mw);
    audit.append(decision({ time: T0 + 7 * HOUR }));
    audit.append(decision({ time: T0 + 9 * HOUR }));
    audit.append(decision({ time: T0 + 10.5 * HOUR }));
    await audit.flush();
    expect(await audit.applyRetention()).toBe(1);
    // The periodic run (every retention/24 = 5 min here) deletes what aged out meanwhile.
    clock.advance(2 * HOUR);
    await expect.poll(() => clock.pendingTimers()).toBe(1);
    clock.advance(5 * 60_000);
    await expect.poll(async () => (await audit.query({ order: 'asc' })).records.map((r) => r.time)).toEqual([T0 + 10.5 * HOUR]);
    expect(await audit.verify()).toMatchObject({ ok: true, checked: 1, anchor: { seq: 2 } });
  });

  it('refuses store: postgres without a database URL with AUDIT_STORE_MISCONFIGURED', async () => {
    const paths = setup({ store: 'postgres' });
    await expect(serve(paths, new FakeClock(T0))).rejects.toMatchObject({ code: 'AUDIT_STORE_MISCONFIGURED' });
  });

  it('opens a private SQLite store under the data directory by default', async () => {
    resetDecisions();
    const paths = setup({});
    const { mw, audit } = await serve(paths, new FakeClock(T0));
    running.push(mw);
    expect(audit.name).toBe('audit');
    expect(audit.store.kind).toBe('sqlite');
    expect(fs.statSync(path.join(paths.dataDir, 'audit', 'audit.db')).mode & 0o777).toBe(0o600);
  });
});

describeWithPostgres('audit capability on PostgreSQL', () => {
  it('uses PostgreSQL when a database URL is given', async () => {
    resetDecisions();
    const paths = setup({});
    const tablePrefix = `t${randomBytes(5).toString('hex')}_`;
    const { mw, audit } = await serve(paths, new FakeClock(T0), { databaseUrl: DATABASE_URL!, factory: (ctx) => createAuditCapability(ctx, { tablePrefix }) });
    try {
      expect(audit.store.kind).toBe('postgres');
      audit.append(decision());
      await audit.flush();
      expect((await audit.query({})).records).toHaveLength(1);
      // No SQLite file (the data dir holds only the checkpoint key and checkpoints).
      expect(fs.existsSync(sqliteFile(paths.dataDir))).toBe(false);
    } finally {
      await mw.stop();
      const cleanup = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix });
      await cleanup.dropTables();
      await cleanup.close();
    }
  });
});
