/**
 * Issue 14, "done when" 6: a replica (PostgreSQL + Redis + a KEK) runs with a data directory that is
 * read-only apart from what the docs list. The server runs as nobody (65534): the tests run as
 * root, and root ignores file permissions, so only another user can show what is really written.
 * The data dir is root's (0755); only the listed paths are nobody's.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { checkRequest } from '../authz/helpers.ts';
import { DATABASE_URL, REDIS_URL } from '../helpers/services.ts';
import type { DiscoveryResponseMsg } from '../sds/harness.ts';
import { createFreshDatabase } from '../state/fresh-database.ts';
import { checkClientOf, DOCUMENTED_DATA_FILES, describeWithServices, type Replica, SECRET_TYPE, sdsClientOf, startReplica } from './replicas.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;

/** The writable paths README "Operating several replicas" lists: files, and the directories whose files rotate. */
const WRITABLE_FILES = ['admin.token', 'serve.lock'];
const WRITABLE_DIRS = ['audit', 'limits'];

const MESH = `apiVersion: meshward.io/v1
kind: Mesh
metadata:
  name: mesh
spec:
  trustDomain: cluster.local
  audit:
    store: postgres
  limits:
    backend: redis
`;

const filesUnder = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true })
  .map((e) => path.relative(dir, path.join(e.parentPath, e.name)) + (e.isDirectory() ? '/' : '')).sort();

(asRoot ? describeWithServices : describeWithServices.skip)('a replica whose data dir is read-only apart from the documented paths', () => {
  let root = '';
  let dataDir = '';
  let db: { url: string; drop(): Promise<void> } | undefined;
  let replica: Replica | undefined;
  const env = { MESHWARD_KEK: randomBytes(32).toString('base64'), MESHWARD_ADMIN_TOKEN: `mw_${randomBytes(32).toString('base64url')}` };

  beforeAll(async () => {
    db = await createFreshDatabase(DATABASE_URL!, 'meshward_readonly');
    root = mkdtempSync(path.join(os.tmpdir(), 'mw-readonly-'));
    chmodSync(root, 0o755); // readable by nobody (the config), writable by root only
    const configDir = path.join(root, 'config');
    cpSync('policies', configDir, { recursive: true });
    writeFileSync(path.join(configDir, 'mesh.yaml'), MESH);
    dataDir = path.join(root, 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    for (const f of WRITABLE_FILES) {
      writeFileSync(path.join(dataDir, f), '', { mode: 0o600 });
      chownSync(path.join(dataDir, f), NOBODY.uid, NOBODY.gid);
    }
    for (const d of WRITABLE_DIRS) {
      mkdirSync(path.join(dataDir, d), { mode: 0o700 });
      chownSync(path.join(dataDir, d), NOBODY.uid, NOBODY.gid);
    }
    replica = await startReplica({ name: 'nobody', configDir, dataDir, databaseUrl: db.url, redisUrl: REDIS_URL!, env, user: NOBODY });
  }, 120_000);

  afterAll(async () => {
    await replica?.stop('SIGKILL');
    await db?.drop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('cannot write the data dir itself as the user it runs as (the premise of this test)', () => {
    expect(() => execFileSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path.join(dataDir, 'probe'))}, 'x')`], { ...NOBODY, stdio: 'pipe' })).toThrow(/EACCES/);
  });

  it('serves: ready, ext_authz checks answered, an SVID over SDS', { timeout: 60_000 }, async () => {
    const r = replica!;
    let ready = { status: 0, body: '' };
    for (const end = Date.now() + 20_000; ready.status !== 200 && Date.now() < end; await new Promise((t) => setTimeout(t, 200))) {
      const res = await fetch(`http://${r.http}/readyz`);
      ready = { status: res.status, body: await res.text() };
    }
    expect(ready.status, `${ready.body}\n${r.logs.join('\n')}`).toBe(200);

    const c = checkClientOf(r);
    const codes = await Promise.all(Array.from({ length: 5 }, () => new Promise<number>((resolve, reject) => {
      c.Check(checkRequest(), (err, res) => (err ? reject(err) : resolve(res.status?.code ?? 0)));
    })));
    c.close();
    expect(codes).toHaveLength(5);
    // The pre-created lock file was rewritten in place: it names the server and where it listens.
    expect(JSON.parse(readFileSync(path.join(dataDir, 'serve.lock'), 'utf8'))).toMatchObject({ http: r.http, grpc: r.grpc, sharedState: true });

    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['ca', 'token', '--database-url', db!.url, '-n', 'shop', '-s', 'orders', '--data', path.join(root, 'cli-data')], { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd: root });
    expect(err.join('')).toBe('');
    expect(code).toBe(0);
    const sds = sdsClientOf(r);
    const md = new Metadata();
    md.set('authorization', `Bearer ${out.join('').trim()}`);
    const res = await new Promise<DiscoveryResponseMsg>((resolve, reject) => {
      sds.FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default'] }, md, (e, o) => (e ? reject(e) : resolve(o)));
    });
    sds.close();
    expect(res.resources[0]!.tls_certificate!.certificate_chain.inline_bytes.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('stops on SIGTERM with exit 0, having written only the documented paths', async () => {
    const code = await replica!.stop('SIGTERM');
    expect(code, replica!.logs.join('\n')).toBe(0);
    expect(replica!.logs.filter((l) => /EACCES|EPERM|EROFS/.test(l))).toEqual([]);
    const entries = filesUnder(dataDir);
    const files = entries.filter((e) => !e.endsWith('/'));
    for (const f of files) expect(f).toMatch(DOCUMENTED_DATA_FILES);
    expect(entries.filter((e) => e.endsWith('/'))).toEqual(WRITABLE_DIRS.map((d) => `${d}/`));
    expect(readFileSync(path.join(dataDir, 'serve.lock'), 'utf8')).toBe(''); // released: emptied, it cannot be removed
    // The checkpoint key and its public key were written (the audit dir is the one it needs).
    expect(files).toEqual(expect.arrayContaining(['audit/checkpoint-key.pem', 'audit/checkpoint-key.pub.pem']));
    expect(statSync(path.join(dataDir, 'audit', 'checkpoint-key.pem')).uid).toBe(NOBODY.uid);
  });
});
