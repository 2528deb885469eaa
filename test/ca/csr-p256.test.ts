/**
 * CSRs through the Istio CA API (past grpc-js, as served) with each P-256 verifier: the native
 * addon (when built; CI builds it) and node:crypto (MESHWARD_NATIVE_CRYPTO=0, always run). A valid
 * CSR is signed; one whose signature or signed content was tampered is refused with
 * INVALID_ARGUMENT. CSRs the native path does not take (compressed point, SHA-384, RSA) keep
 * node:crypto's check, allowed and denied alike.
 */
import { generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';

const built = existsSync(new URL('../../build/native/p256_verify.node', import.meta.url));

interface IstioClient {
  CreateCertificate(req: object, md: Metadata, cb: (err: ServiceError | null, res: { cert_chain: string[] }) => void): void;
  close(): void;
}

const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
function tlv(tag: number, body: Buffer): Buffer {
  const len = body.length < 0x80 ? Buffer.from([body.length]) : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const ALG = { sha256: '300a06082a8648ce3d040302', sha384: '300a06082a8648ce3d040303', rsa: '300d06092a864886f70d01010b0500' };

/** A PKCS#10 CSR over `spki`, empty subject, signed with `key` (hand-encoded: any SPKI form). */
function csr(spki: Buffer, key: KeyObject, alg: keyof typeof ALG): Buffer {
  const info = seq(Buffer.from('020100', 'hex'), seq(), spki, Buffer.from('a000', 'hex'));
  const signature = sign(alg === 'sha384' ? 'sha384' : 'sha256', info, key);
  return seq(info, Buffer.from(ALG[alg], 'hex'), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}
const pem = (der: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;

function p256(compressed = false) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  if (!compressed) return { privateKey, spki };
  const point = spki.subarray(-65);
  const odd = point[64]! & 1;
  return { privateKey, spki: Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), Buffer.from([2 + odd]), point.subarray(1, 33)]) };
}

/** The signature's last byte flipped (still DER), or the signed version INTEGER 0 made 1. */
function tampered(der: Buffer, where: 'signature' | 'info'): Buffer {
  const copy = Buffer.from(der);
  if (where === 'signature') copy[copy.length - 1]! ^= 0x01;
  else copy[der.indexOf(Buffer.from('020100', 'hex')) + 2] = 0x01;
  return copy;
}

let cleanup: (() => void) | undefined;
afterEach(() => {
  cleanup?.();
  cleanup = undefined;
  vi.unstubAllEnvs();
});

/** Imports the CA afresh with MESHWARD_NATIVE_CRYPTO as given and serves it on a local gRPC server. */
async function serve(nativeCrypto: '0' | '') {
  vi.stubEnv('MESHWARD_NATIVE_CRYPTO', nativeCrypto);
  vi.resetModules();
  const { p256VerifyImplementation } = await import('../../src/ca/p256-verify.ts');
  const { CREATE_CERTIFICATE_PATH, istioCaServiceDefinition, istioCaRoute, registerIstioCaService } = await import('../../src/ca/istio-api.ts');
  const { resolveMesh } = await import('../../src/config/mesh-defaults.ts');
  const { createWorkloadAuthenticator, loadOrCreateBootstrapKey, signBootstrapToken } = await import('../../src/identity/index.ts');
  const { routeGrpcStreams } = await import('../../src/lib/grpc-stream-router.ts');
  const { streamHandlerOf } = await import('../../src/lib/grpc-unary-stream.ts');
  const { silentLogger } = await import('../../src/lib/logger.ts');
  const { createTestCa, removeDir, TRUST_DOMAIN } = await import('./helpers.ts');
  const ca = createTestCa();
  const key = await loadOrCreateBootstrapKey(ca.dir);
  const authenticator = createWorkloadAuthenticator({ settings: () => resolveMesh({ trustDomain: TRUST_DOMAIN }), bootstrapPublicKey: key.publicKey, clock: ca.clock });
  const deps = { authenticator, issuer: ca.issuer, logger: silentLogger() };
  const server = new Server();
  registerIstioCaService(server, deps);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  routeGrpcStreams(server, new Map([[CREATE_CERTIFICATE_PATH, streamHandlerOf(istioCaRoute(deps))]]));
  const Ctor = makeGenericClientConstructor(istioCaServiceDefinition(), 'IstioCertificateService');
  const client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as IstioClient;
  cleanup = () => {
    client.close();
    server.forceShutdown();
    ca.records.close();
    removeDir(ca.dir);
  };
  const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: ca.clock.now() });
  const call = (csrPem: string) => new Promise<{ cert_chain: string[] }>((resolve, reject) => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    client.CreateCertificate({ csr: csrPem }, md, (err, res) => (err ? reject(err) : resolve(res)));
  });
  return { call, implementation: p256VerifyImplementation().implementation, caller: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` };
}

const modes = [
  { name: 'native', env: '' as const, run: built }, // '' = use the addon when it loads
  { name: 'node:crypto', env: '0' as const, run: true },
];

describe.each(modes)('CreateCertificate, P-256 CSR verified by $name', ({ name, env, run }) => {
  it.runIf(run)('signs a valid P-256 / SHA-256 CSR, for the token\'s identity, with the CSR\'s key', async () => {
    const { call, implementation, caller } = await serve(env);
    expect(implementation).toBe(name);
    const { privateKey, spki } = p256();
    const res = await call(pem(csr(spki, privateKey, 'sha256')));
    const leaf = new X509Certificate(res.cert_chain[0]!);
    expect(leaf.subjectAltName).toBe(`URI:${caller}`);
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
  });

  it.runIf(run)('refuses a CSR whose signature, or the content it signs, was tampered, and one signed by another key', async () => {
    const { call } = await serve(env);
    const { privateKey, spki } = p256();
    const der = csr(spki, privateKey, 'sha256');
    await expect(call(pem(tampered(der, 'signature')))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/does not verify/) });
    await expect(call(pem(tampered(der, 'info')))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/does not verify/) });
    await expect(call(pem(csr(spki, p256().privateKey, 'sha256')))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await call(pem(der)); // the untampered one is fine
  });

  it.runIf(run)('keeps node:crypto\'s check for a compressed P-256 point, P-256 / SHA-384 and RSA: allowed when valid, refused when tampered', async () => {
    const { call } = await serve(env);
    const compressed = p256(true);
    const plain = p256();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaSpki = rsa.publicKey.export({ type: 'spki', format: 'der' });
    for (const der of [csr(compressed.spki, compressed.privateKey, 'sha256'), csr(plain.spki, plain.privateKey, 'sha384'), csr(rsaSpki, rsa.privateKey, 'rsa')]) {
      expect((await call(pem(der))).cert_chain).toHaveLength(3);
      await expect(call(pem(tampered(der, 'signature')))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      await expect(call(pem(tampered(der, 'info')))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    }
  });
});
