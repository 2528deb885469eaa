/**
 * Issue 14, "done when": three `meshward serve` processes on loopback with one PostgreSQL database
 * (created for this test) and one Redis behave as one system, seen through public interfaces only
 * (the CLI, gRPC, the HTTP API, openssl).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { checkRequest } from '../authz/helpers.ts';
import { DATABASE_URL, describeWithPostgres, describeWithRedis, REDIS_URL } from '../helpers/services.ts';
import type { DiscoveryResponseMsg, SdsClient } from '../sds/harness.ts';
import { createFreshDatabase } from '../state/fresh-database.ts';
import { type Replica, startReplica } from './replicas.ts';

const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const RATE_LIMIT = 10;

interface CheckClient {
  Check(r: object, cb: (err: ServiceError | null, res: { status?: { code?: number } }) => void): void;
  close(): void;
}

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

const describeWithServices: typeof describeWithPostgres = DATABASE_URL ? describeWithRedis : describeWithPostgres;

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
    const Client = envoyService('envoy.service.auth.v3.Authorization');
    const c = new Client(r.grpc, credentials.createInsecure()) as unknown as CheckClient;
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
    const Sds = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
    const sds = new Sds(replicas[1]!.grpc, credentials.createInsecure()) as unknown as SdsClient;
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
});
