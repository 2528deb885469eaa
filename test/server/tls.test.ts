import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import type { ServeOptions } from '../../src/server/capability.ts';
import { checkRequest, ORDERS_FROM_WEB, SERVICES } from '../authz/helpers.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { HealthClient } from '../helpers/health.ts';
import { createTestCa, type TestCert } from '../helpers/tls.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  closers.splice(0).forEach((c) => c());
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

interface Setup { dir: string; certFile: string; keyFile: string; write(pair: TestCert): void }

function pairFiles(): Setup {
  const dir = tempDir('mw-tls-');
  dirs.push(dir);
  const certFile = path.join(dir, 'server.pem');
  const keyFile = path.join(dir, 'server-key.pem');
  return {
    dir, certFile, keyFile,
    write(pair) {
      writeFileSync(certFile, pair.certPem);
      writeFileSync(keyFile, pair.keyPem, { mode: 0o600 });
    },
  };
}

async function start(options: Partial<ServeOptions>, clock = new FakeClock(Date.now())): Promise<Meshward> {
  const configDir = writeConfigDir({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
  dirs.push(configDir);
  const mw = await createMeshward(
    { configDir, dataDir: path.join(tempDir('mw-tls-data-'), 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...options },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [createAuthzCapability] },
  );
  running.push(mw);
  await mw.start();
  return mw;
}

/** meshward serving `listener` with a fresh pair, re-read every second of its fake clock. */
async function startRotating(listener: 'grpcTls' | 'httpTls') {
  const ca = await createTestCa();
  const files = pairFiles();
  const first = await ca.sign({ ip: ['127.0.0.1'] });
  files.write(first);
  const clock = new FakeClock(Date.now());
  const mw = await start({ [listener]: { certFile: files.certFile, keyFile: files.keyFile }, tlsRefreshIntervalMs: 1000 }, clock);
  return { ca, files, first, clock, mw };
}

type CheckClient = { Check(r: object, cb: (err: ServiceError | null, res: { status: { code: number } }) => void): void; close(): void };

function checkClient(address: string, creds = credentials.createInsecure()): CheckClient {
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(address, creds) as unknown as CheckClient;
  closers.push(() => client.close());
  return client;
}

function check(client: CheckClient, request: object): Promise<number> {
  return new Promise((resolve, reject) => client.Check(request, (err, res) => (err ? reject(err) : resolve(res.status.code))));
}

/** SHA-256 fingerprint of the certificate a fresh TLS connection to `port` is served. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

describe('TLS on the gRPC port', () => {
  it('serves Check (fast path) and grpc-js methods over TLS to a client that trusts the CA; plaintext and untrusting clients get no answer', async () => {
    const ca = await createTestCa();
    const files = pairFiles();
    files.write(await ca.sign({ dns: ['localhost'], ip: ['127.0.0.1'] }));
    const mw = await start({ grpcTls: { certFile: files.certFile, keyFile: files.keyFile } });
    expect(mw.grpcFastPaths).toEqual(['/envoy.service.auth.v3.Authorization/Check']);

    const secure = checkClient(mw.addresses.grpc, credentials.createSsl(Buffer.from(ca.certPem)));
    expect(await check(secure, checkRequest())).toBe(status.OK);
    expect(await check(secure, checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder' }))).toBe(status.PERMISSION_DENIED);

    const health = new HealthClient(mw.addresses.grpc, credentials.createSsl(Buffer.from(ca.certPem)));
    closers.push(() => health.close());
    const served = await new Promise<{ status: string }>((resolve, reject) => (health as unknown as { check(r: object, cb: (e: Error | null, r: { status: string }) => void): void }).check({ service: '' }, (e, r) => (e ? reject(e) : resolve(r))));
    expect(served.status).toBe('SERVING');

    await expect(check(checkClient(mw.addresses.grpc), checkRequest())).rejects.toMatchObject({ code: status.UNAVAILABLE });
    const stranger = await createTestCa('another CA');
    await expect(check(checkClient(mw.addresses.grpc, credentials.createSsl(Buffer.from(stranger.certPem))), checkRequest())).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('serves a rotated certificate to new connections, and keeps the last good one when the rotated pair is bad', async () => {
    const { ca, files, first, clock, mw } = await startRotating('grpcTls');
    const port = Number(mw.addresses.grpc.split(':')[1]);
    const client = checkClient(mw.addresses.grpc, credentials.createSsl(Buffer.from(ca.certPem)));
    expect(await check(client, checkRequest())).toBe(status.OK);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(first.certPem));

    const second = await ca.sign({ ip: ['127.0.0.1'] });
    files.write(second);
    clock.advance(999);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(first.certPem));
    clock.advance(1);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(second.certPem));
    // The connection made before the rotation keeps working.
    expect(await check(client, checkRequest())).toBe(status.OK);

    // A certificate whose key is not in the key file: rejected, the second pair stays.
    const third = await ca.sign({ ip: ['127.0.0.1'] });
    writeFileSync(files.certFile, third.certPem);
    clock.advance(1000);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(second.certPem));
    // Once the key file catches up, the third pair is taken.
    writeFileSync(files.keyFile, third.keyPem);
    clock.advance(1000);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(third.certPem));

    const metrics = await mw.registry.metrics();
    const expiry = Math.floor(Date.parse(new X509Certificate(third.certPem).validTo) / 1000);
    expect(metrics).toContain(`meshward_tls_certificate_expiry_timestamp_seconds{listener="grpc"} ${expiry}`);
    expect(metrics).toContain('meshward_tls_reloads_total{listener="grpc",result="rotated"} 2');
    expect(metrics).toContain('meshward_tls_reloads_total{listener="grpc",result="rejected"} 1');
  });

  it('serves the rotated certificate on the unary port too, and refuses a TLS client that does not offer h2', async () => {
    const ca = await createTestCa();
    const files = pairFiles();
    const first = await ca.sign({ ip: ['127.0.0.1'] });
    files.write(first);
    const clock = new FakeClock(Date.now());
    const mw = await start({ grpcTls: { certFile: files.certFile, keyFile: files.keyFile }, tlsRefreshIntervalMs: 1000, unaryGrpcAddress: '127.0.0.1:0' }, clock);
    const port = Number(mw.addresses.unary!.split(':')[1]);
    const client = checkClient(mw.addresses.unary!, credentials.createSsl(Buffer.from(ca.certPem)));
    expect(await check(client, checkRequest())).toBe(status.OK);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(first.certPem));
    const second = await ca.sign({ ip: ['127.0.0.1'] });
    files.write(second);
    clock.advance(1000);
    expect(await servedFingerprint(port, ca.certPem)).toBe(fingerprintOf(second.certPem));
    expect(await check(client, checkRequest())).toBe(status.OK);
    // HTTP/2 over TLS is negotiated with ALPN (RFC 9113 §3.2): a client offering only http/1.1 fails
    // the handshake, one offering nothing is cut off after it (and counted).
    const attempt = (ALPNProtocols: string[] | undefined) => new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, ...(ALPNProtocols ? { ALPNProtocols } : {}) });
      let answered = false;
      socket.on('data', () => { answered = true; });
      socket.on('error', (err) => resolve(`error: ${err.message}`));
      socket.on('close', () => resolve(answered ? 'answered' : 'closed'));
      socket.on('secureConnect', () => socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')));
    });
    expect(await attempt(['http/1.1'])).toMatch(/^(closed|error)/);
    expect(await attempt(undefined)).toMatch(/^(closed|error)/);
    expect(await mw.registry.metrics()).toContain('meshward_unary_grpc_connection_errors_total{code="ALPN"} 1');
  });

  it('refuses to start with a key that does not match, an expired certificate or a missing file, naming the file', async () => {
    const ca = await createTestCa();
    const files = pairFiles();
    const a = await ca.sign({ ip: ['127.0.0.1'] });
    const b = await ca.sign({ ip: ['127.0.0.1'] });
    writeFileSync(files.certFile, a.certPem);
    writeFileSync(files.keyFile, b.keyPem);
    await expect(start({ grpcTls: { certFile: files.certFile, keyFile: files.keyFile } }))
      .rejects.toMatchObject({ code: 'TLS_FILES_INVALID', message: `${files.keyFile}: the private key does not match the certificate in ${files.certFile}` });

    files.write(a);
    await expect(start({ grpcTls: { certFile: files.certFile, keyFile: files.keyFile } }, new FakeClock(Date.now() + 2 * 3_600_000)))
      .rejects.toMatchObject({ code: 'TLS_FILES_INVALID', message: expect.stringMatching(new RegExp(`^${files.certFile}: the certificate expired at `)) });

    const missing = path.join(files.dir, 'nope.pem');
    await expect(start({ grpcTls: { certFile: missing, keyFile: files.keyFile } }))
      .rejects.toMatchObject({ code: 'TLS_FILES_INVALID', message: `${missing}: cannot read the certificate (ENOENT)` });

    writeFileSync(files.keyFile, 'not a key');
    await expect(start({ grpcTls: { certFile: files.certFile, keyFile: files.keyFile } }))
      .rejects.toMatchObject({ code: 'TLS_FILES_INVALID', message: expect.stringContaining(`${files.keyFile}: not a PEM private key`) });
  });
});

describe('TLS on the HTTP API', () => {
  it('serves a rotated certificate to new connections', async () => {
    const { ca, files, first, clock, mw } = await startRotating('httpTls');
    const served = () => new Promise<{ status: number; fingerprint: string }>((resolve, reject) => {
      https.get(`https://${mw.addresses.http}/healthz`, { ca: ca.certPem, agent: false }, (res) => {
        const fingerprint = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint }));
      }).on('error', reject);
    });
    expect(await served()).toEqual({ status: 200, fingerprint: fingerprintOf(first.certPem) });
    const second = await ca.sign({ ip: ['127.0.0.1'] });
    files.write(second);
    clock.advance(1000);
    expect(await served()).toEqual({ status: 200, fingerprint: fingerprintOf(second.certPem) });
  });

  it('re-reads the client CA bundle: a client certificate from a CA added later is then verified', async () => {
    const ca = await createTestCa();
    const later = await createTestCa('CA added later');
    const files = pairFiles();
    files.write(await ca.sign({ ip: ['127.0.0.1'] }));
    const caFile = path.join(files.dir, 'clients.pem');
    writeFileSync(caFile, ca.certPem);
    const clock = new FakeClock(Date.now());
    const options = { httpTls: { certFile: files.certFile, keyFile: files.keyFile, clientCaFile: caFile }, tlsRefreshIntervalMs: 1000 };
    const configDir = writeConfigDir({ 'services.yaml': SERVICES });
    dirs.push(configDir);
    const mw = await createMeshward(
      { configDir, dataDir: path.join(tempDir('mw-tls-data-'), 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...options },
      { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [] },
    );
    running.push(mw);
    mw.apiAuth.addVerifier((req) => ((req.raw.socket as tls.TLSSocket).authorized ? { name: 'client-cert', role: 'operator' } : undefined));
    await mw.start();
    const client = await later.sign({ uri: 'spiffe://cluster.local/ns/ops/sa/operator' });
    const reload = () => new Promise<number>((resolve, reject) => {
      const req = https.request(`https://${mw.addresses.http}/v1/config/reload`, { method: 'POST', ca: ca.certPem, cert: client.certPem, key: client.keyPem, agent: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
    expect(await reload()).toBe(401);
    writeFileSync(caFile, `${ca.certPem}${later.certPem}`);
    clock.advance(1000);
    expect(await reload()).toBe(200);
  });

  it('refuses to start with a client CA bundle that holds no certificate', async () => {
    const ca = await createTestCa();
    const files = pairFiles();
    files.write(await ca.sign({ ip: ['127.0.0.1'] }));
    const caFile = path.join(files.dir, 'clients.pem');
    writeFileSync(caFile, 'not a certificate\n');
    await expect(start({ httpTls: { certFile: files.certFile, keyFile: files.keyFile, clientCaFile: caFile } }))
      .rejects.toMatchObject({ code: 'TLS_FILES_INVALID', message: `${caFile}: no PEM certificate in the CA bundle` });
  });
});
