/**
 * `serve --unary-grpc-addr`: ext_authz Check, the Istio CA's CreateCertificate and health on
 * meshward's own HTTP/2 server, with grpc-js clients (as Envoy's and agents' calls arrive).
 */
import type { webcrypto } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { credentials, type ChannelCredentials, Metadata, makeGenericClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability } from '../../src/audit/index.ts';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { createCaCapability, istioCaServiceDefinition } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward, type ServeOptions } from '../../src/meshward.ts';
import { type CheckResponse, checkRequest, ORDERS_FROM_WEB, SERVICES } from '../authz/helpers.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { HealthClient } from '../helpers/health.ts';
import { createTestCa } from '../helpers/tls.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(extra: Partial<ServeOptions> = {}, registry: Registry = createRegistry()): Promise<{ mw: Meshward; dataDir: string }> {
  const configDir = writeConfigDir({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
  const dataDir = tempDir('mw-unary-');
  dirs.push(configDir, dataDir);
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', unaryGrpcAddress: '127.0.0.1:0', watchConfig: false, ...extra },
    { logger: silentLogger(), registry, capabilities: [createAuditCapability, createCaCapability, createAuthzCapability] },
  );
  running.push(mw);
  await mw.start();
  return { mw, dataDir };
}

type CheckClient = { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void; close(): void };

function check(address: string, request: object, creds: ChannelCredentials = credentials.createInsecure()): Promise<CheckResponse> {
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(address, creds) as unknown as CheckClient;
  return new Promise<CheckResponse>((resolve, reject) => client.Check(request, (err, res) => { client.close(); return err ? reject(err) : resolve(res); }));
}

interface IstioClient {
  CreateCertificate(req: object, md: Metadata, cb: (err: ServiceError | null, res: { cert_chain: string[] }) => void): void;
  close(): void;
}

async function createCertificate(address: string, token: string | undefined): Promise<{ cert_chain: string[] }> {
  const Ctor = makeGenericClientConstructor(istioCaServiceDefinition(), 'IstioCertificateService');
  const client = new Ctor(address, credentials.createInsecure()) as unknown as IstioClient;
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg });
  const md = new Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => client.CreateCertificate({ csr: csr.toString('pem'), validity_duration: 3600 }, md, (err, res) => { client.close(); return err ? reject(err) : resolve(res); }));
}

const decisionId = (r: CheckResponse) => r.dynamic_metadata!.fields.decision_id!.stringValue!;

describe('the unary gRPC port', () => {
  it('allows and denies Check exactly as the gRPC port does, and records every decision', async () => {
    const { mw } = await start();
    expect(mw.addresses.unary).toMatch(/^127\.0\.0\.1:\d+$/);
    const allow = checkRequest();
    const deny = checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder' });
    const [unaryAllow, unaryDeny, grpcAllow, grpcDeny] = await Promise.all([
      check(mw.addresses.unary!, allow), check(mw.addresses.unary!, deny), check(mw.addresses.grpc, allow), check(mw.addresses.grpc, deny),
    ]);
    expect(unaryAllow.status.code).toBe(0);
    expect(unaryDeny.status.code).toBe(7);
    const withoutId = (r: CheckResponse) => JSON.stringify({ ...r, dynamic_metadata: undefined }).replaceAll(decisionId(r), '');
    expect(withoutId(unaryAllow)).toBe(withoutId(grpcAllow));
    expect(withoutId(unaryDeny)).toBe(withoutId(grpcDeny));

    await mw.capability<AuditCapability>('audit')!.flush();
    const token = mw.apiAuth.createToken('alice', 'auditor');
    for (const [r, decision] of [[unaryAllow, 'allow'], [unaryDeny, 'deny']] as const) {
      const record = await mw.http.inject({ url: `/v1/decisions/${decisionId(r)}`, headers: { authorization: `Bearer ${token}` } });
      expect(record.statusCode).toBe(200);
      expect(record.json()).toMatchObject({ decision });
    }
  });

  it('issues a certificate for the token’s identity and refuses a call without a token', async () => {
    const { mw, dataDir } = await start();
    const key = await loadOrCreateBootstrapKey(dataDir);
    const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
    const { cert_chain } = await createCertificate(mw.addresses.unary!, token);
    expect(new X509Certificate(cert_chain[0]!).subjectAltName).toBe('URI:spiffe://cluster.local/ns/shop/sa/orders');
    await expect(createCertificate(mw.addresses.unary!, undefined)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it('answers health SERVING and UNIMPLEMENTED for the streaming services it does not carry', async () => {
    const { mw } = await start();
    const health = new HealthClient(mw.addresses.unary!, credentials.createInsecure());
    const serving = await new Promise<string>((resolve, reject) => health.check({ service: '' }, (err: Error | null, res?: { status: string }) => (err ? reject(err) : resolve(res!.status))));
    const unknown = await new Promise<ServiceError>((resolve) => health.check({ service: 'nope' }, (err: ServiceError) => resolve(err)));
    health.close();
    expect(serving).toBe('SERVING');
    expect(unknown.code).toBe(status.NOT_FOUND);
    const Sds = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
    const sds = new Sds(mw.addresses.unary!, credentials.createInsecure()) as unknown as { FetchSecrets(r: object, cb: (err: ServiceError | null) => void): void; close(): void };
    const err = await new Promise<ServiceError | null>((resolve) => sds.FetchSecrets({ resource_names: ['default'] }, resolve));
    sds.close();
    expect(err?.code).toBe(status.UNIMPLEMENTED);
  });

  it('serves TLS with the gRPC port’s certificate, and only to clients that verify it', async () => {
    const ca = await createTestCa();
    const leaf = await ca.sign({ ip: ['127.0.0.1'] });
    const dir = tempDir('mw-unary-tls-');
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'cert.pem'), leaf.certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    const { mw } = await start({ grpcTls: { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') } });
    const trusted = credentials.createSsl(Buffer.from(ca.certPem));
    expect((await check(mw.addresses.unary!, checkRequest(), trusted)).status.code).toBe(0);
    await expect(check(mw.addresses.unary!, checkRequest())).rejects.toMatchObject({ code: status.UNAVAILABLE });
    const other = await createTestCa('another CA');
    await expect(check(mw.addresses.unary!, checkRequest(), credentials.createSsl(Buffer.from(other.certPem)))).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('counts the connections it closes for protocol errors', async () => {
    const registry = createRegistry();
    const { mw } = await start({}, registry);
    const [host, port] = [mw.addresses.unary!.split(':')[0]!, Number(mw.addresses.unary!.split(':')[1])];
    const { connect } = await import('node:net');
    await new Promise<void>((resolve) => {
      const socket = connect(port, host, () => socket.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      socket.resume();
    });
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/meshward_unary_grpc_connection_errors_total\{code="PROTOCOL_ERROR"\} 1/);
  });
});

describe('serve without --unary-grpc-addr', () => {
  it('opens no unary port', async () => {
    const { mw } = await start({ unaryGrpcAddress: undefined });
    expect(mw.addresses.unary).toBeUndefined();
  });
});
