/**
 * Shared state in PostgreSQL (a fresh schema per test): the bootstrap key and API tokens two
 * replicas agree on, secrets sealed under the KEK.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openSharedApiAuth } from '../../src/api/shared-tokens.ts';
import { loadOrCreateSharedBootstrapKey } from '../../src/identity/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { PostgresStateStore } from '../../src/state/index.ts';
import { DATABASE_URL, describeWithPostgres, freshPgSchema } from '../helpers/services.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const freshSchema = () => freshPgSchema('mw_state', (drop) => cleanups.push(drop));

async function store(schema: string, kek: Buffer): Promise<PostgresStateStore> {
  const s = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek, schema });
  cleanups.push(() => s.close());
  return s;
}

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'mw-state-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describeWithPostgres('shared state in PostgreSQL', () => {
  it('gives two replicas starting together the same bootstrap key (the first stored wins)', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const [a, b] = await Promise.all([store(schema, kek), store(schema, kek)]);
    const [ka, kb] = await Promise.all([loadOrCreateSharedBootstrapKey(a), loadOrCreateSharedBootstrapKey(b)]);
    expect(ka.kid).toBe(kb.kid);
    const again = await loadOrCreateSharedBootstrapKey(await store(schema, kek));
    expect(again.kid).toBe(ka.kid);
  });

  it('keeps the bootstrap key sealed in the table, and refuses to open it with another KEK', async () => {
    const schema = freshSchema();
    const a = await store(schema, randomBytes(32));
    const key = await loadOrCreateSharedBootstrapKey(a);
    const rows = (await a.query(`SELECT name, sealed FROM ${schema}.secrets`)).rows;
    expect(rows).toHaveLength(1);
    expect(String(rows[0]!.sealed)).not.toMatch(/PRIVATE KEY/);
    const pem = key.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64').slice(30, 60);
    expect(String(rows[0]!.sealed)).not.toContain(pem);
    const other = await store(schema, randomBytes(32));
    await expect(loadOrCreateSharedBootstrapKey(other)).rejects.toMatchObject({ code: 'STATE_KEK_INVALID' });
  });

  it('accepts on replica B, within seconds, an API token created on replica A; refuses unknown tokens', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const [dirA, dirB] = [tempDir(), tempDir()];
    const a = await openSharedApiAuth({ dataDir: dirA, store: await store(schema, kek), logger: silentLogger(), pollMs: 200 });
    const b = await openSharedApiAuth({ dataDir: dirB, store: await store(schema, kek), logger: silentLogger(), pollMs: 200 });
    cleanups.push(() => { a.stop(); b.stop(); });
    const token = a.auth.createToken('alice', 'auditor');
    expect(a.auth.verifyToken(token)).toEqual({ name: 'alice', role: 'auditor' });
    const deadline = Date.now() + 5000;
    while (!b.auth.verifyToken(token) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(b.auth.verifyToken(token)).toEqual({ name: 'alice', role: 'auditor' });
    expect(b.auth.verifyToken(`mw_${randomBytes(32).toString('base64url')}`)).toBeUndefined();
    // Only hashes are stored.
    const rows = (await (await store(schema, kek)).query(`SELECT * FROM ${schema}.api_tokens`)).rows;
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(rows.map((r) => r.sha256)).toContain(createHash('sha256').update(token).digest('hex'));
  });

  it('creates one admin token for the whole fleet, written by the replica that created it', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const dirs = [tempDir(), tempDir(), tempDir()];
    const stores = await Promise.all(dirs.map(() => store(schema, kek)));
    const auths = await Promise.all(dirs.map((dataDir, i) => openSharedApiAuth({ dataDir, store: stores[i]!, logger: silentLogger() })));
    cleanups.push(() => auths.forEach((x) => x.stop()));
    expect(dirs.filter((d) => existsSync(path.join(d, 'admin.token')))).toHaveLength(1);
    expect((await stores[0]!.listApiTokens()).filter((t) => t.role === 'admin')).toHaveLength(1);
  });
});
