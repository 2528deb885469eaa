/**
 * Issue 14, "done when": three `meshward serve` processes on loopback with one PostgreSQL database
 * (created for this test) and one Redis behave as one system, seen through public interfaces only
 * (the CLI, gRPC, the HTTP API, openssl).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { checkRequest } from '../authz/helpers.ts';
import { DATABASE_URL, REDIS_URL } from '../helpers/services.ts';
import type { DiscoveryResponseMsg } from '../sds/harness.ts';
import { createFreshDatabase } from '../state/fresh-database.ts';
import { type CheckClient, checkClientOf, DOCUMENTED_DATA_FILES, describeWithServices, type Replica, SECRET_TYPE, sdsClientOf, startReplica } from './replicas.ts';

const RATE_LIMIT = 10;

function meshYaml(limitDomain: string): string {
  return `apiVersion: meshward.io/v1
kind: Mesh
metadata:
  name: mesh
spec:
  trustDomain: cluster.local
  audit:
    store: postgres
  limits:
    backend: redis
    # A loaded test machine must not turn a slow Redis answer into an allowed request (open) or a
    # denied one: the count is what is under test, not Redis latency.
    failureMode: closed
    timeout: 2s
---
apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata:
  name: replicas-test
  namespace: shop
spec:
  domain: ${limitDomain}
  selector: { matchLabels: { app: orders } }
  descriptors:
    - key: replica_test
      rate_limit: { unit: minute, requests_per_unit: ${RATE_LIMIT} }
  requestDescriptors:
    - actions:
        - requestHeader: { headerName: x-replica-test, descriptorKey: replica_test }
`;
}

describeWithServices('three replicas on one PostgreSQL and one Redis', () => {
  let root = '';
  let db: { url: string; drop(): Promise<void> } | undefined;
  const replicas: Replica[] = [];
  const env = { MESHWARD_KEK: randomBytes(32).toString('base64'), MESHWARD_ADMIN_TOKEN: `mw_${randomBytes(32).toString('base64url')}` };
  const clients: { close(): void }[] = [];
  let answered = 0;

  const cli = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd: root });
    return { code, out: out.join(''), err: err.join('') };
  };

  const checkClient = (r: Replica): CheckClient => {
    const c = checkClientOf(r);
    clients.push(c);
    return c;
  };

  const check = (c: CheckClient, request: object) => new Promise<number>((resolve, reject) => {
    c.Check(request, (err, res) => {
      if (err) return reject(err);
      answered++;
      resolve(res.status?.code ?? 0);
    });
  });

  beforeAll(async () => {
    db = await createFreshDatabase(DATABASE_URL!, 'meshward_replicas');
    root = mkdtempSync(path.join(os.tmpdir(), 'mw-replicas-'));
    const configDir = path.join(root, 'config');
    cpSync('policies', configDir, { recursive: true });
    writeFileSync(path.join(configDir, 'mesh.yaml'), meshYaml(`replicas-${randomBytes(4).toString('hex')}`));
    // One at a time: the first creates the shared CA and keys, the others load them (starting
    // them together is covered by test/ca/shared-ca.services.test.ts).
    for (const name of ['a', 'b', 'c']) {
      replicas.push(await startReplica({ name, configDir, dataDir: path.join(root, `data-${name}`), databaseUrl: db.url, redisUrl: REDIS_URL!, env }));
    }
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await db?.drop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 60_000);

  const jwtSvid = (r: Replica, token: string) => fetch(`http://${r.http}/v1/svids/jwt`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ audience: ['orders'] }),
  });

  it('accepts on all three a bootstrap token minted by `meshward ca token` against the shared store, and refuses one signed by another key', async () => {
    const minted = await cli(['ca', 'token', '--database-url', db!.url, '--namespace', 'shop', '--service-account', 'web', '--data', path.join(root, 'cli-data')]);
    expect(minted.err).toBe('');
    expect(minted.code).toBe(0);
    const token = minted.out.trim();
    for (const r of replicas) {
      const res = await jwtSvid(r, token);
      expect(res.status, `replica ${r.name}`).toBe(200);
      expect(((await res.json()) as { spiffeId: string }).spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    }
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'web' } } })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).setIssuer('meshward-bootstrap').setAudience('meshward')
      .setSubject('system:serviceaccount:shop:web').setIssuedAt().setExpirationTime('1h').sign(privateKey);
    for (const r of replicas) expect((await jwtSvid(r, forged)).status, `replica ${r.name}`).toBe(401);
  });

  it('delivers over SDS from replica B an SVID that openssl verifies against the bundle replica C serves', async () => {
    const token = (await cli(['ca', 'token', '--database-url', db!.url, '-n', 'shop', '-s', 'orders', '--data', path.join(root, 'cli-data')])).out.trim();
    const sds = sdsClientOf(replicas[1]!);
    clients.push(sds);
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    const res = await new Promise<DiscoveryResponseMsg>((resolve, reject) => {
      sds.FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default'] }, md, (err, out) => (err ? reject(err) : resolve(out)));
    });
    const chainPem = res.resources[0]!.tls_certificate!.certificate_chain.inline_bytes.toString();
    const bundle = await (await fetch(`http://${replicas[2]!.http}/v1/bundle.pem`)).text();
    const certs = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).filter((p) => p.includes('BEGIN'));
    const files = { leaf: path.join(root, 'leaf.pem'), chain: path.join(root, 'chain.pem'), bundle: path.join(root, 'bundle.pem') };
    writeFileSync(files.leaf, certs[0]!);
    writeFileSync(files.chain, certs.slice(1).join(''));
    writeFileSync(files.bundle, bundle);
    const out = execFileSync('openssl', ['verify', '-CAfile', files.bundle, '-untrusted', files.chain, files.leaf], { encoding: 'utf8' });
    expect(out.trim()).toBe(`${files.leaf}: OK`);
    expect(new X509Certificate(certs[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/orders');
  });

  it('records every ext_authz check answered by any of the three in the one audit chain, which verifies', async () => {
    const perReplica = 60;
    const cs = replicas.map(checkClient);
    const before = answered;
    await Promise.all(cs.flatMap((c) => Array.from({ length: perReplica }, () => check(c, checkRequest()))));
    expect(answered - before).toBe(3 * perReplica);
    let verify = { code: -1, report: { checked: -1 } };
    for (const end = Date.now() + 15_000; Date.now() < end;) {
      const r = await cli(['audit', 'verify', '--json', '--database-url', db!.url, '--data', path.join(root, 'verify-data')]);
      verify = { code: r.code, report: JSON.parse(r.out) as { checked: number } };
      if (verify.report.checked >= answered) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(verify.report.checked).toBe(answered);
    expect(verify.code).toBe(0);
  });

  it(`holds a rate limit of ${RATE_LIMIT}/minute exactly across the three (not 3 × ${RATE_LIMIT})`, async () => {
    const cs = replicas.map(checkClient);
    const key = randomBytes(8).toString('hex');
    const codes = await Promise.all(Array.from({ length: 3 * RATE_LIMIT }, (_, i) => check(cs[i % 3]!, checkRequest({ headers: { 'x-replica-test': key } }))));
    expect(codes.filter((c) => c === 0)).toHaveLength(RATE_LIMIT);
  });

  const caView = async (r: Replica) => (await (await fetch(`http://${r.http}/v1/ca`, { headers: { authorization: `Bearer ${env.MESHWARD_ADMIN_TOKEN}` } })).json()) as {
    bundleSequence: number; slots: { id: string; state: string }[]; replica: { id: string; leader: boolean };
  };
  const rotate = async (r: Replica, body: object) => {
    const res = await fetch(`http://${r.http}/v1/ca/rotate`, { method: 'POST', headers: { authorization: `Bearer ${env.MESHWARD_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return ((await res.json()) as { prepared: { id: string } }).prepared.id;
  };
  const waitFor = async <T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> => {
    for (const end = Date.now() + ms; ;) {
      const v = await get();
      if (ok(v)) return v;
      if (Date.now() > end) throw new Error(`${what}: not reached in ${ms} ms (last: ${JSON.stringify(v)})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const leaderOf = async (among: Replica[]) => {
    const views = await waitFor('one leader', () => Promise.all(among.map(caView)), (vs) => vs.filter((v) => v.replica.leader).length === 1);
    return among[views.findIndex((v) => v.replica.leader)]!;
  };

  /** An SDS stream (default + ROOTCA) on a replica, recording in order what it receives. */
  const sdsStream = async (r: Replica) => {
    const token = (await cli(['ca', 'token', '--database-url', db!.url, '-n', 'shop', '-s', 'orders', '--data', path.join(root, 'cli-data')])).out.trim();
    const client = sdsClientOf(r);
    clients.push(client);
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    const stream = client.StreamSecrets(md);
    const events: { kind: 'roots' | 'leaf'; pems: string[] }[] = [];
    const split = (pem: string) => pem.split(/(?<=-----END CERTIFICATE-----\n)/).filter((p) => p.includes('BEGIN'));
    stream.on('data', (res: DiscoveryResponseMsg) => {
      for (const secret of res.resources) {
        if (secret.validation_context) events.push({ kind: 'roots', pems: split(secret.validation_context.trusted_ca.inline_bytes.toString()) });
        if (secret.tls_certificate) events.push({ kind: 'leaf', pems: split(secret.tls_certificate.certificate_chain.inline_bytes.toString()) });
      }
      stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: res.version_info, response_nonce: res.nonce });
    });
    stream.on('error', () => {});
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'] });
    await waitFor(`first SDS answer from ${r.name}`, async () => events.length, (n) => n >= 2);
    return { replica: r, events, close: () => stream.cancel() };
  };

  it('shows with `meshward ca status --database-url` the CA the replicas serve', async () => {
    const status = await cli(['ca', 'status', '--json', '--database-url', db!.url, '--data', path.join(root, 'cli-data')]);
    expect(status.code).toBe(0);
    const shared = JSON.parse(status.out) as { bundleSequence: number; slots: { id: string; state: string }[] };
    const served = await caView(replicas[2]!);
    expect(shared.bundleSequence).toBe(served.bundleSequence);
    expect(shared.slots.map((x) => [x.id, x.state])).toEqual(served.slots.map((x) => [x.id, x.state]));
  });

  it('publishes a rotation started on one replica on all three before it activates, every SDS stream gets the new certificate, and a SIGKILLed leader is replaced mid-rotation', async () => {
    const streams = await Promise.all(replicas.map(sdsStream));
    const oldRoot = new X509Certificate(await (await fetch(`http://${replicas[0]!.http}/v1/bundle.pem`)).text());
    const leader = await leaderOf(replicas);
    const follower = replicas.find((r) => r !== leader)!;
    const prepared = await rotate(follower, { newRoot: true, activateAfter: '3s' });
    const underNewRoot = (pems: string[]) => !new X509Certificate(pems.at(-1)!).verify(oldRoot.publicKey);
    for (const s of streams) {
      await waitFor(`new certificate on ${s.replica.name}'s stream`, async () => s.events, (ev) => ev.some((e) => e.kind === 'leaf' && underNewRoot(e.pems)));
      const firstNewLeaf = s.events.findIndex((e) => e.kind === 'leaf' && underNewRoot(e.pems));
      const firstNewRoots = s.events.findIndex((e) => e.kind === 'roots' && e.pems.length === 2);
      // The new root reached this sidecar before any certificate under it.
      expect(firstNewRoots, `replica ${s.replica.name}`).toBeGreaterThanOrEqual(0);
      expect(firstNewRoots, `replica ${s.replica.name}`).toBeLessThan(firstNewLeaf);
    }
    const views = await Promise.all(replicas.map(caView));
    for (const v of views) expect(v.slots.find((x) => x.state === 'active')?.id).toBe(prepared);
    for (const s of streams) s.close();

    // Again, and the leader is killed while the next CA waits to activate.
    const current = await leaderOf(replicas);
    const survivors = replicas.filter((r) => r !== current);
    const next = await rotate(survivors[0]!, { activateAfter: '4s' });
    current.child.kill('SIGKILL');
    await current.exited;
    const final = await waitFor('the survivors activate the prepared CA', () => Promise.all(survivors.map(caView)), (vs) => vs.every((v) => v.slots.find((x) => x.state === 'active')?.id === next), 60_000);
    expect(new Set(final.map((v) => v.slots.find((x) => x.state === 'active')?.id))).toEqual(new Set([next]));
    expect(new Set(final.map((v) => v.bundleSequence)).size).toBe(1);
    expect((await leaderOf(survivors)).name).not.toBe(current.name);
  }, 120_000);

  it('writes to its data dir only what the docs list (the admin token on the first replica, the audit checkpoint key and checkpoints)', async () => {
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
    const written = replicas.map((r) => files(r.dataDir));
    // The list in docs/replicas.md ("What a replica writes to its data dir"): no CA, key or token file among them.
    for (const list of written) for (const f of list) expect(f).toMatch(DOCUMENTED_DATA_FILES);
    expect(written.filter((list) => list.includes('admin.token'))).toHaveLength(1);
  });
});

