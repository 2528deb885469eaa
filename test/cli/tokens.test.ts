/**
 * `meshward token create|list|revoke` and a running server: a token created while it runs is
 * accepted within a couple of seconds, a revoked one refused, an expired one refused; roles limit
 * what a token may do (an auditor cannot rotate the CA); last use is recorded in batches.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/logger.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { cli } from '../helpers/cli.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { DATABASE_URL, describeWithPostgres, freshPgSchema } from '../helpers/services.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dataDir(): string {
  const d = tempDir('mw-tokens-');
  cleanups.push(() => removeDir(d));
  return d;
}

async function serve(data: string, extra: Partial<Parameters<typeof createMeshward>[0]> = {}): Promise<Meshward> {
  const m = await createMeshward({ configDir: 'policies', dataDir: data, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...extra }, { logger: silentLogger() });
  await m.start();
  cleanups.push(() => m.stop());
  return m;
}

/** The status of GET /v1/proxies (operator or auditor role) with `token`. */
async function statusWith(m: Meshward, token: string): Promise<number> {
  return (await fetch(`http://${m.addresses.http}/v1/proxies`, { headers: { authorization: `Bearer ${token}` } })).status;
}

const within = { timeout: 3000, interval: 100 };

describe('meshward token (data directory)', () => {
  it('creates a token shown once and stored only as its SHA-256, lists it, and revokes it', async () => {
    const data = dataDir();
    const created = await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'ci', '--ttl', '30d']);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^mw_[A-Za-z0-9_-]{43}$/);
    const file = readFileSync(path.join(data, 'api-tokens.json'), 'utf8');
    expect(file).not.toContain(token);
    expect(file).toContain(createHash('sha256').update(token).digest('hex'));
    expect(statSync(path.join(data, 'api-tokens.json')).mode & 0o777).toBe(0o600);

    const listed = await cli(['token', 'list', '-d', data]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+ROLE\s+CREATED\s+EXPIRES\s+LAST USED/);
    expect(listed.stdout).toMatch(/ci\s+operator\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+never/);
    expect(listed.stdout).not.toContain(token);

    expect((await cli(['token', 'create', '-d', data, '--role', 'auditor', '--name', 'ci'])).code).toBe(73); // the name is taken
    expect((await cli(['token', 'create', '-d', data, '--role', 'root', '--name', 'x'])).code).toBe(2);
    expect((await cli(['token', 'revoke', '-d', data, 'ci'])).code).toBe(0);
    expect((await cli(['token', 'list', '-d', data])).stdout).not.toMatch(/^ci\s/m);
    expect((await cli(['token', 'revoke', '-d', data, 'ci'])).code).toBe(1);
  });

  it('writes the token to --out with mode 0600, for --token-file', async () => {
    const data = dataDir();
    const out = path.join(data, 'operator.token');
    const r = await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'ops', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/mw_/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).toMatch(/^mw_/);
  });

  it('a running server accepts a token created after it started, refuses it once revoked, and refuses an expired one', async () => {
    const data = dataDir();
    const m = await serve(data);
    const created = await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'late']);
    const token = created.stdout.trim();
    await expect.poll(() => statusWith(m, token), within).toBe(200);
    expect(await statusWith(m, 'mw_not-a-token')).toBe(401);

    expect((await cli(['token', 'revoke', '-d', data, 'late'])).code).toBe(0);
    await expect.poll(() => statusWith(m, token), within).toBe(401);

    const short = (await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'short', '--ttl', '1500ms'])).stdout.trim();
    const long = (await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'long', '--ttl', '1h'])).stdout.trim();
    await expect.poll(() => statusWith(m, long), within).toBe(200);
    await expect.poll(() => statusWith(m, short), within).toBe(401); // accepted at first, refused once expired
    expect(await statusWith(m, long)).toBe(200);
    expect((await cli(['token', 'list', '-d', data])).stdout).toMatch(/short\s+operator\s+\S+\s+\S+ \(expired\)/);
  });

  it('gives each role its rights: an auditor cannot rotate the CA, an admin can', async () => {
    const data = dataDir();
    const m = await serve(data); // in-process: no serve.lock, so the address is given
    const at = ['--http-addr', m.addresses.http];
    const auditor = (await cli(['token', 'create', '-d', data, '--role', 'auditor', '--name', 'aud'])).stdout.trim();
    const admin = (await cli(['token', 'create', '-d', data, '--role', 'admin', '--name', 'adm'])).stdout.trim();
    await expect.poll(async () => (await cli(['ca', 'rotate', '-d', data, ...at, '--token', auditor])).stderr, within).toMatch(/403/);
    const denied = await cli(['ca', 'rotate', '-d', data, ...at, '--token', auditor]);
    expect(denied.code).toBe(77);
    const allowed = await cli(['ca', 'rotate', '-d', data, ...at, '--token', admin]);
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
  });

  it('records when a token was last used, in a batch written at the latest when the server stops', async () => {
    const data = dataDir();
    const m = await serve(data);
    const token = (await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'used'])).stdout.trim();
    (await cli(['token', 'create', '-d', data, '--role', 'operator', '--name', 'unused'])).stdout.trim();
    await expect.poll(() => statusWith(m, token), within).toBe(200);
    expect(existsSync(path.join(data, 'api-tokens.last-used.json'))).toBe(false); // not a write per request
    await m.stop();
    const listed = (await cli(['token', 'list', '-d', data])).stdout;
    expect(listed).toMatch(/^used\s+operator\s+\S+\s+-\s+\d{4}-\d\d-\d\dT[\d:]+Z$/m);
    expect(listed).toMatch(/^unused\s+operator\s+\S+\s+-\s+never$/m);
  });
});

describeWithPostgres('meshward token --database-url (tokens replicas share)', () => {
  it('a token created in the shared store is accepted by a running replica, and refused once revoked', async () => {
    const schema = freshPgSchema('mw_tok', (drop) => cleanups.push(drop));
    const kek = randomBytes(32);
    const m = await serve(dataDir(), { databaseUrl: DATABASE_URL!, kek, stateSchema: schema });
    const env = { MESHWARD_KEK: kek.toString('base64'), MESHWARD_STATE_SCHEMA: schema };
    const cliData = dataDir();
    const created = await cli(['token', 'create', '-d', cliData, '--database-url', DATABASE_URL!, '--role', 'operator', '--name', 'shared'], env);
    expect(created.code, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(existsSync(path.join(cliData, 'api-tokens.json'))).toBe(false);
    await expect.poll(() => statusWith(m, token), within).toBe(200);
    // Without --database-url, next to a server that keeps its tokens in PostgreSQL: refused, not written where it never looks.
    writeFileSync(path.join(cliData, 'serve.lock'), JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), http: m.addresses.http, sharedState: true }));
    const misplaced = await cli(['token', 'create', '-d', cliData, '--role', 'operator', '--name', 'lost']);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain('keeps API tokens in PostgreSQL');
    rmSync(path.join(cliData, 'serve.lock'));
    const listed = await cli(['token', 'list', '-d', cliData, '--database-url', DATABASE_URL!], env);
    expect(listed.stdout).toMatch(/^shared\s+operator/m);
    expect(listed.stdout).toMatch(/^admin\s+admin/m);
    expect((await cli(['token', 'revoke', '-d', cliData, '--database-url', DATABASE_URL!, 'shared'], env)).code).toBe(0);
    await expect.poll(() => statusWith(m, token), within).toBe(401);
    const kept = (await cli(['token', 'create', '-d', cliData, '--database-url', DATABASE_URL!, '--role', 'auditor', '--name', 'kept'], env)).stdout.trim();
    await expect.poll(() => statusWith(m, kept), within).toBe(200);
    await m.stop();
    // The replica's batch of last-used times reached the store when it stopped; unused tokens have none.
    const rows = JSON.parse((await cli(['token', 'list', '-d', cliData, '--database-url', DATABASE_URL!, '--json'], env)).stdout) as { name: string; lastUsedAt: number | null }[];
    expect(rows.find((r) => r.name === 'kept')?.lastUsedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(rows.find((r) => r.name === 'admin')?.lastUsedAt).toBeNull();
  });
});
