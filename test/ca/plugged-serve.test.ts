/**
 * serve reads a plugged-in CA (Istio `cacerts` layout) by itself: from --ca-dir, or from
 * <data>/ca/plugged where the Kubernetes manifest mounts the Secret. It wins over the data dir's
 * generated CA, is logged at start, and wrong files stop the start naming the file.
 * The CA is made with the openssl CLI, independently of meshward's own certificate code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { createLocalJWKSet, type JWK, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createSdsCapability } from '../../src/sds/index.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { bearer, reader, SECRET_TYPE, type SdsClient, type SecretMsg } from '../sds/harness.ts';

const TRUST_DOMAIN = 'example.org';
const dirs: string[] = [];
const running: Meshward[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

function track(dir: string): string {
  dirs.push(dir);
  return dir;
}

/** An Istio-style `cacerts` directory made with openssl: root → intermediate (ca-cert.pem). */
function opensslCacerts(dir: string, name = 'Corp'): void {
  mkdirSync(dir, { recursive: true });
  const work = track(tempDir('mw-openssl-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(path.join(work, 'ext.cnf'), [
    '[v3_ca]', 'basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid:always', `subjectAltName=URI:spiffe://${TRUST_DOMAIN}`, '',
  ].join('\n'));
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'root-key.pem');
  ssl('req', '-x509', '-new', '-key', 'root-key.pem', '-subj', `/O=${name}/CN=${name} Root CA`, '-days', '365',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root-cert.pem');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca-key.pem');
  ssl('req', '-new', '-key', 'ca-key.pem', '-subj', `/O=${name}/CN=${name} Intermediate CA`, '-out', 'ca.csr');
  ssl('x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-days', '90',
    '-extfile', 'ext.cnf', '-extensions', 'v3_ca', '-out', 'ca-cert.pem');
  const read = (f: string) => readFileSync(path.join(work, f), 'utf8');
  writeFileSync(path.join(dir, 'ca-cert.pem'), read('ca-cert.pem'));
  writeFileSync(path.join(dir, 'ca-key.pem'), read('ca-key.pem'), { mode: 0o600 });
  writeFileSync(path.join(dir, 'root-cert.pem'), read('root-cert.pem'));
  writeFileSync(path.join(dir, 'cert-chain.pem'), read('ca-cert.pem') + read('root-cert.pem'));
}

interface LogLine { level: number; msg: string; mode?: string; source?: string; subject?: string; serial?: string; spkiSha256?: string; notAfter?: string }

async function serve(dataDir: string, options: { pluggedCaDir?: string; clock?: FakeClock } = {}) {
  const configDir = track(writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', `trustDomain: ${TRUST_DOMAIN}`) }));
  const lines: LogLine[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(options.pluggedCaDir ? { pluggedCaDir: options.pluggedCaDir } : {}) },
    { logger: createLogger({ destination: sink }), registry: createRegistry(), capabilities: [createCaCapability, createSdsCapability], ...(options.clock ? { clock: options.clock } : {}) },
  );
  running.push(mw);
  await mw.start();
  return { mw, lines, caLine: () => lines.find((l) => l.msg.startsWith('CA in use')) };
}

const pemCerts = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));

/** The workload certificate chain and ROOTCA a sidecar gets over SDS. */
async function sdsSecrets(mw: Meshward, dataDir: string): Promise<{ chainPem: string; rootsPem: string }> {
  const key = await loadOrCreateBootstrapKey(dataDir);
  const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
  const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
  const client = new Ctor(mw.addresses.grpc, credentials.createInsecure()) as unknown as SdsClient;
  const stream = client.StreamSecrets(bearer(token));
  const r = reader(stream);
  stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], node: { id: 'sidecar~10.0.0.1~orders-1.shop~shop.svc.cluster.local' } });
  const first = await r.next();
  stream.end();
  client.close();
  const byName = new Map<string, SecretMsg>(first.resources.map((s) => [s.name, s]));
  return {
    chainPem: byName.get('default')!.tls_certificate!.certificate_chain.inline_bytes.toString(),
    rootsPem: byName.get('ROOTCA')!.validation_context!.trusted_ca.inline_bytes.toString(),
  };
}

/** One DeltaSecrets exchange for default + ROOTCA, announcing `held` versions; what came back. */
async function deltaSecrets(mw: Meshward, dataDir: string, held: Record<string, string>): Promise<{ versions: Record<string, string>; rootsPem?: string }> {
  const key = await loadOrCreateBootstrapKey(dataDir);
  const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
  const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
  const client = new Ctor(mw.addresses.grpc, credentials.createInsecure()) as unknown as SdsClient;
  const stream = client.DeltaSecrets(bearer(token));
  const r = reader(stream);
  stream.write({ type_url: SECRET_TYPE, resource_names_subscribe: ['default', 'ROOTCA'], initial_resource_versions: held, node: { id: 'sidecar~10.0.0.1~orders-1.shop~shop.svc.cluster.local' } });
  const first = await r.next();
  stream.end();
  client.close();
  const root = first.resources.find((x) => x.name === 'ROOTCA');
  return {
    versions: Object.fromEntries(first.resources.map((x) => [x.name, x.version])),
    ...(root ? { rootsPem: root.resource.validation_context!.trusted_ca.inline_bytes.toString() } : {}),
  };
}

/** openssl's own verdict on a chain against root-cert.pem. */
function opensslVerify(chainPem: string, rootFile: string): string {
  const work = track(tempDir('mw-verify-'));
  const [leaf, ...rest] = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)!;
  writeFileSync(path.join(work, 'leaf.pem'), leaf!);
  writeFileSync(path.join(work, 'untrusted.pem'), rest.join(''));
  const r = spawnSync('openssl', ['verify', '-CAfile', rootFile, '-untrusted', path.join(work, 'untrusted.pem'), path.join(work, 'leaf.pem')], { encoding: 'utf8' });
  return r.stdout + r.stderr;
}

describe('serve with a plugged-in CA', () => {
  it('signs SVIDs chained to the root of --ca-dir, publishes that root, and logs which CA is in use', async () => {
    const cacerts = track(tempDir('mw-cacerts-'));
    opensslCacerts(cacerts);
    const dataDir = track(tempDir('mw-plugged-data-'));
    const { mw, caLine } = await serve(dataDir, { pluggedCaDir: cacerts });

    const { chainPem, rootsPem } = await sdsSecrets(mw, dataDir);
    const root = new X509Certificate(readFileSync(path.join(cacerts, 'root-cert.pem')));
    const caCert = new X509Certificate(readFileSync(path.join(cacerts, 'ca-cert.pem')));
    const [leaf, signing] = pemCerts(chainPem);
    expect(leaf!.subjectAltName).toBe(`URI:spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
    expect(signing!.fingerprint256).toBe(caCert.fingerprint256);
    expect(leaf!.verify(caCert.publicKey)).toBe(true);
    expect(caCert.verify(root.publicKey)).toBe(true);
    expect(opensslVerify(chainPem, path.join(cacerts, 'root-cert.pem'))).toMatch(/leaf\.pem: OK/);
    expect(pemCerts(rootsPem).map((c) => c.fingerprint256)).toEqual([root.fingerprint256]);
    const bundle = await mw.http.inject({ method: 'GET', url: '/v1/bundle.pem' });
    expect(pemCerts(bundle.body).map((c) => c.fingerprint256)).toEqual([root.fingerprint256]);

    expect(caLine()).toMatchObject({ level: 30, mode: 'plugged', source: cacerts, serial: caCert.serialNumber, notAfter: new Date(caCert.validTo).toISOString() });
    expect(caLine()!.subject).toContain('Corp Intermediate CA');
    expect(caLine()!.spkiSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(caLine())).not.toContain('PRIVATE KEY');
  });

  it('uses the files in <data>/ca/plugged over the CA the data dir already generated', async () => {
    const dataDir = track(tempDir('mw-plugged-data-'));
    const first = await serve(dataDir);
    expect(first.caLine()).toMatchObject({ mode: 'generated', source: path.join(dataDir, 'ca') });
    const generatedRoot = (await first.mw.http.inject({ method: 'GET', url: '/v1/bundle.pem' })).body;
    await first.mw.stop();

    const mounted = path.join(dataDir, 'ca', 'plugged');
    opensslCacerts(mounted);
    const second = await serve(dataDir);
    expect(second.caLine()).toMatchObject({ mode: 'plugged', source: mounted });
    const { chainPem, rootsPem } = await sdsSecrets(second.mw, dataDir);
    expect(opensslVerify(chainPem, path.join(mounted, 'root-cert.pem'))).toMatch(/leaf\.pem: OK/);
    expect(rootsPem).not.toContain(generatedRoot.trim());
    expect(pemCerts(rootsPem).map((c) => c.fingerprint256)).toEqual([new X509Certificate(readFileSync(path.join(mounted, 'root-cert.pem'))).fingerprint256]);
  });

  it('sends the new ROOTCA to a sidecar resuming a delta SDS stream with the version it held under the previous CA', async () => {
    const dataDir = track(tempDir('mw-plugged-data-'));
    const first = await serve(dataDir);
    const held = await deltaSecrets(first.mw, dataDir, {});
    await first.mw.stop();
    const mounted = path.join(dataDir, 'ca', 'plugged');
    opensslCacerts(mounted);
    const second = await serve(dataDir);
    // Envoy reconnects announcing what it holds (initial_resource_versions).
    const resumed = await deltaSecrets(second.mw, dataDir, held.versions);
    expect(resumed.versions.ROOTCA).toBeDefined();
    expect(pemCerts(resumed.rootsPem!).map((c) => c.fingerprint256)).toEqual([new X509Certificate(readFileSync(path.join(mounted, 'root-cert.pem'))).fingerprint256]);
  });

  it('gives every replica reading the same files the same JWT-SVID key: a JWT-SVID from one verifies with the bundle of another', async () => {
    const cacerts = track(tempDir('mw-cacerts-'));
    opensslCacerts(cacerts);
    const dataA = track(tempDir('mw-plugged-data-'));
    const a = await serve(dataA, { pluggedCaDir: cacerts });
    const b = await serve(track(tempDir('mw-plugged-data-')), { pluggedCaDir: cacerts });
    const key = await loadOrCreateBootstrapKey(dataA);
    const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
    const minted = await a.mw.http.inject({ method: 'POST', url: '/v1/svids/jwt', headers: { authorization: `Bearer ${token}` }, payload: { audience: ['payments'] } });
    expect(minted.statusCode).toBe(200);
    const bundleB = (await b.mw.http.inject({ method: 'GET', url: '/v1/bundle' })).json() as { keys: (JWK & { use: string })[] };
    // SPIFFE marks them `use: jwt-svid`; jose only picks keys without `use` or with `use: sig`.
    const jwks = createLocalJWKSet({ keys: bundleB.keys.filter((k) => k.use === 'jwt-svid').map(({ use: _use, ...k }) => k) });
    const { payload } = await jwtVerify(minted.json().token as string, jwks, { audience: 'payments' });
    expect(payload.sub).toBe(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
  });

  it('keeps the generated CA when <data>/ca/plugged is empty (an optional Secret not created), with a warning', async () => {
    const dataDir = track(tempDir('mw-plugged-data-'));
    mkdirSync(path.join(dataDir, 'ca', 'plugged'), { recursive: true });
    const { caLine, lines } = await serve(dataDir);
    expect(caLine()).toMatchObject({ mode: 'generated' });
    expect(lines.some((l) => l.level === 40 && l.msg.includes('holds none of the plugged-in CA files'))).toBe(true);
  });

  it('refuses a rotation of a plugged-in CA (CA_ROTATION_UNSUPPORTED, 409): the files are replaced instead', async () => {
    const cacerts = track(tempDir('mw-cacerts-'));
    opensslCacerts(cacerts);
    const { mw } = await serve(track(tempDir('mw-plugged-data-')), { pluggedCaDir: cacerts });
    const admin = mw.apiAuth.createToken('adm', 'admin');
    const res = await mw.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: {} });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'CA_ROTATION_UNSUPPORTED' });
  });

  it('warns when the plugged-in files change on disk, and keeps signing with the CA in use until a restart', async () => {
    const cacerts = track(tempDir('mw-cacerts-'));
    opensslCacerts(cacerts);
    const clock = new FakeClock(Date.now());
    const dataDir = track(tempDir('mw-plugged-data-'));
    const { mw, lines } = await serve(dataDir, { pluggedCaDir: cacerts, clock });
    const before = (await mw.http.inject({ method: 'GET', url: '/v1/bundle.pem' })).body;
    opensslCacerts(cacerts, 'NewCorp');
    clock.advance(61_000);
    expect(lines.filter((l) => l.msg.includes('plugged-in CA files changed on disk'))).toHaveLength(1);
    clock.advance(61_000);
    expect(lines.filter((l) => l.msg.includes('plugged-in CA files changed on disk'))).toHaveLength(1);
    expect((await mw.http.inject({ method: 'GET', url: '/v1/bundle.pem' })).body).toBe(before);
    await mw.stop();
    // After the restart the new files sign, and the replaced CA's state (its key copy) is gone.
    const restarted = await serve(dataDir, { pluggedCaDir: cacerts, clock });
    expect(restarted.caLine()!.subject).toContain('NewCorp Intermediate CA');
    expect(restarted.lines.some((l) => l.msg === 'removed the state of a replaced plugged-in CA')).toBe(true);
  });
});

describe('meshward serve (process) with a broken plugged-in CA', () => {
  it('fails to start with exit 78 naming the wrong file, and generates no CA', () => {
    const dataDir = track(tempDir('mw-plugged-data-'));
    const cacerts = path.join(dataDir, 'ca', 'plugged');
    opensslCacerts(cacerts);
    const other = track(tempDir('mw-cacerts-'));
    opensslCacerts(other, 'Other');
    writeFileSync(path.join(cacerts, 'ca-key.pem'), readFileSync(path.join(other, 'ca-key.pem')));
    // The sources through tsx (bin/meshward-dev.js), never a possibly stale dist/.
    const r = spawnSync(process.execPath, ['bin/meshward-dev.js', 'serve', '--config', 'policies', '--data', dataDir, '--no-watch'], {
      encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, MESHWARD_GRPC_ADDR: '127.0.0.1:0', MESHWARD_HTTP_ADDR: '127.0.0.1:0' },
    });
    expect(r.status).toBe(78);
    expect(r.stdout + r.stderr).toContain(path.join(cacerts, 'ca-key.pem'));
    expect(r.stdout + r.stderr).toMatch(/does not match/);
    expect(existsSync(path.join(dataDir, 'ca', 'journal.json'))).toBe(false);
  });
});
