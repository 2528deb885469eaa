import type { webcrypto } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { X509Certificate } from 'node:crypto';
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterEach, describe, expect, it } from 'vitest';
import { CREATE_CERTIFICATE_PATH, istioCaServiceDefinition, istioCaRoute, registerIstioCaService } from '../../src/ca/istio-api.ts';
import { streamHandlerOf } from '../../src/lib/grpc-unary-stream.ts';
import { resolveMesh } from '../../src/config/mesh-defaults.ts';
import { createWorkloadAuthenticator, loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { routeGrpcStreams } from '../../src/lib/grpc-stream-router.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createTestCa, removeDir, type TestCa, TRUST_DOMAIN } from './helpers.ts';

interface IstioClient {
  CreateCertificate(req: object, md: Metadata, cb: (err: ServiceError | null, res: { cert_chain: string[] }) => void): void;
  close(): void;
}

let ca: TestCa | undefined;
let server: Server | undefined;
let client: IstioClient | undefined;
afterEach(() => {
  client?.close();
  server?.forceShutdown();
  ca?.records.close();
  if (ca) removeDir(ca.dir);
  ca = undefined;
  server = undefined;
  client = undefined;
});

async function csrPem(uri: string): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] });
  return csr.toString('pem');
}

/** The CA service on its own gRPC server: past grpc-js (`routed`) or through it. */
async function start(routed: boolean): Promise<{ token: (ttlMs?: number) => Promise<string> }> {
  ca = createTestCa();
  const mesh = resolveMesh({ trustDomain: TRUST_DOMAIN });
  const key = await loadOrCreateBootstrapKey(ca.dir);
  const authenticator = createWorkloadAuthenticator({ settings: () => mesh, bootstrapPublicKey: key.publicKey, clock: ca.clock });
  const deps = { authenticator, issuer: ca.issuer, logger: silentLogger() };
  server = new Server();
  registerIstioCaService(server, deps);
  const port = await new Promise<number>((resolve, reject) => server!.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  if (routed) expect(routeGrpcStreams(server, new Map([[CREATE_CERTIFICATE_PATH, streamHandlerOf(istioCaRoute(deps))]]))).toBe(1);
  const Ctor = makeGenericClientConstructor(istioCaServiceDefinition(), 'IstioCertificateService');
  client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as IstioClient;
  const clock = ca.clock;
  return { token: (ttlMs = 3_600_000) => signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs, nowMs: clock.now() }) };
}

function call(req: object, token?: string): Promise<{ cert_chain: string[] }> {
  const md = new Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => client!.CreateCertificate(req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

describe.each([['past grpc-js', true], ['through grpc-js', false]])('CreateCertificate %s', (_name, routed) => {
  it('signs for the token\'s identity, not the one the CSR asks for, and has recorded it when it answers', async () => {
    const { token } = await start(routed);
    const res = await call({ csr: await csrPem(`spiffe://${TRUST_DOMAIN}/ns/kube-system/sa/admin`), validity_duration: 1800 }, await token());
    expect(res.cert_chain).toHaveLength(3);
    const leaf = new X509Certificate(res.cert_chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
    expect(Date.parse(leaf.validTo) - ca!.clock.now()).toBe(1800_000);
    // Read by another connection, without flushing: committed before the answer.
    const db = new Database(path.join(ca!.dir, 'ca', 'certificates.db'), { readonly: true });
    const row = db.prepare('SELECT spiffe_id FROM certificates WHERE serial = ?').get(leaf.serialNumber.toLowerCase()) as { spiffe_id: string } | undefined;
    db.close();
    expect(row?.spiffe_id).toBe(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
  });

  it('answers concurrent calls with distinct certificates, each for its own CSR key, chained to the active CA', async () => {
    const { token } = await start(routed);
    const bearer = await token();
    const keys = await Promise.all(Array.from({ length: 24 }, () => crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>));
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const csrs = await Promise.all(keys.map(async (k) => (await x509.Pkcs10CertificateRequestGenerator.create({ keys: k, signingAlgorithm: alg })).toString('pem')));
    const answers = await Promise.all(csrs.map((csr) => call({ csr }, bearer)));
    const signer = ca!.authority.active();
    const intermediate = new X509Certificate(signer.chainPem);
    const serials = new Set<string>();
    for (const [i, res] of answers.entries()) {
      expect(res.cert_chain.slice(1)).toEqual([signer.chainPem, signer.rootPem]);
      const leaf = new X509Certificate(res.cert_chain[0]!);
      expect(leaf.verify(intermediate.publicKey)).toBe(true);
      const spki = Buffer.from(await crypto.subtle.exportKey('spki', keys[i]!.publicKey));
      expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
      expect(leaf.subjectAltName).toBe(`URI:spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
      serials.add(leaf.serialNumber);
    }
    expect(serials.size).toBe(answers.length);
  });

  it('refuses a caller without a token, with a bad CSR, and with a token that expired after it was cached', async () => {
    const { token } = await start(routed);
    const csr = await csrPem('spiffe://x/y');
    await expect(call({ csr })).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    const shortLived = await token(120_000);
    await expect(call({ csr: 'garbage' }, shortLived)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await call({ csr }, shortLived); // verified and cached
    await expect(call({ csr: 'garbage' }, shortLived)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT }); // cached token, bad CSR
    ca!.clock.advance(10 * 60_000);
    await expect(call({ csr }, shortLived)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });
});
