import type { webcrypto } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import { afterEach, describe, expect, it } from 'vitest';
import { istioCaServiceDefinition } from '../../src/ca/index.ts';
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import { type Harness, startHarness, TRUST_DOMAIN } from '../sds/harness.ts';
import { tempDir } from '../helpers/config.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface IstioClient {
  CreateCertificate(req: object, md: Metadata, cb: (err: ServiceError | null, res: { cert_chain: string[] }) => void): void;
  close(): void;
}

function istioClient(address: string): IstioClient {
  const Ctor = makeGenericClientConstructor(istioCaServiceDefinition(), 'IstioCertificateService');
  return new Ctor(address, credentials.createInsecure()) as unknown as IstioClient;
}

async function csrPem(uri: string): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] });
  return csr.toString('pem');
}

function createCertificate(client: IstioClient, req: object, md: Metadata): Promise<{ cert_chain: string[] }> {
  return new Promise((resolve, reject) => client.CreateCertificate(req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

describe('Istio CA API', () => {
  it('signs a CSR for the authenticated service account, whatever identity the CSR asks for', async () => {
    h = await startHarness();
    const client = istioClient(h.meshward.addresses.grpc);
    const md = new Metadata();
    md.set('authorization', `Bearer ${await h.token('shop', 'orders')}`);
    const res = await createCertificate(client, { csr: await csrPem(`spiffe://${TRUST_DOMAIN}/ns/istio-system/sa/istiod`), validity_duration: 1800 }, md);
    client.close();
    expect(res.cert_chain).toHaveLength(3);
    const [leaf, intermediate, root] = res.cert_chain.map((p) => new X509Certificate(p));
    expect(leaf!.subjectAltName).toBe(`URI:spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
    expect(leaf!.verify(intermediate!.publicKey)).toBe(true);
    expect(intermediate!.verify(root!.publicKey)).toBe(true);
    expect(Date.parse(leaf!.validTo) - h.clock.now()).toBe(1800_000);
  });

  it('refuses a caller without a token', async () => {
    h = await startHarness();
    const client = istioClient(h.meshward.addresses.grpc);
    await expect(createCertificate(client, { csr: await csrPem('spiffe://x/y') }, new Metadata())).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    client.close();
  });

  it('refuses a malformed CSR with INVALID_ARGUMENT', async () => {
    h = await startHarness();
    const client = istioClient(h.meshward.addresses.grpc);
    const md = new Metadata();
    md.set('authorization', `Bearer ${await h.token('shop', 'orders')}`);
    await expect(createCertificate(client, { csr: 'garbage' }, md)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    client.close();
  });
});

describe('CA HTTP API', () => {
  it('serves the SPIFFE bundle publicly', async () => {
    h = await startHarness();
    const res = await h.meshward.http.inject({ method: 'GET', url: '/v1/bundle' });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { keys: { use: string; x5c?: string[]; kid?: string }[]; spiffe_sequence: number };
    expect(body.keys.filter((k) => k.use === 'x509-svid')).toHaveLength(1);
    expect(body.keys.filter((k) => k.use === 'jwt-svid').every((k) => k.kid)).toBe(true);
    expect(body.spiffe_sequence).toBeGreaterThan(0);
  });

  it('lists issued certificates to auditors only, with filters and pagination', async () => {
    h = await startHarness();
    for (const sa of ['a', 'b', 'c']) await h.ca.currentSvid(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/${sa}`);
    expect((await h.meshward.http.inject({ method: 'GET', url: '/v1/certificates' })).statusCode).toBe(401);
    const operator = h.meshward.apiAuth.createToken('op', 'operator');
    expect((await h.meshward.http.inject({ method: 'GET', url: '/v1/certificates', headers: { authorization: `Bearer ${operator}` } })).statusCode).toBe(403);
    const auditor = { authorization: `Bearer ${h.meshward.apiAuth.createToken('aud', 'auditor')}` };
    const page1 = (await h.meshward.http.inject({ method: 'GET', url: '/v1/certificates?namespace=shop&limit=2', headers: auditor })).json();
    expect(page1.certificates).toHaveLength(2);
    expect(page1.nextCursor).toBeDefined();
    const page2 = (await h.meshward.http.inject({ method: 'GET', url: `/v1/certificates?namespace=shop&limit=2&cursor=${page1.nextCursor}`, headers: auditor })).json();
    expect(page2.certificates).toHaveLength(1);
    expect(page2.nextCursor).toBeUndefined();
    const ids = [...page1.certificates, ...page2.certificates].map((c: { spiffeId: string }) => c.spiffeId).sort();
    expect(ids).toEqual(['a', 'b', 'c'].map((sa) => `spiffe://${TRUST_DOMAIN}/ns/shop/sa/${sa}`));
    const one = (await h.meshward.http.inject({ method: 'GET', url: '/v1/certificates?serviceAccount=b', headers: auditor })).json();
    expect(one.certificates).toHaveLength(1);
    expect(one.certificates[0].method).toBe('sds');
  });

  it('keeps issued-certificate records and the CA across a restart', async () => {
    const dataDir = tempDir('mw-ca-restart-');
    h = await startHarness({ dataDir });
    const svid = await h.ca.currentSvid(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
    const root = h.ca.trustBundlePem();
    await h.meshward.stop();
    const clock = h.clock;
    // Restart on the same data dir (close() would delete it: stop only).
    h = await startHarness({ dataDir, clock });
    expect(h.ca.trustBundlePem()).toBe(root);
    const auditor = { authorization: `Bearer ${h.meshward.apiAuth.createToken('aud', 'auditor')}` };
    const res = (await h.meshward.http.inject({ method: 'GET', url: `/v1/certificates?serial=${svid.svid.serial}`, headers: auditor })).json();
    expect(res.certificates).toHaveLength(1);
    expect(res.certificates[0].spiffeId).toBe(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
  });

  it('lets only admins force a rotation', async () => {
    h = await startHarness();
    const operator = h.meshward.apiAuth.createToken('op', 'operator');
    expect((await h.meshward.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${operator}` }, payload: {} })).statusCode).toBe(403);
    const admin = h.meshward.apiAuth.createToken('adm', 'admin');
    const res = await h.meshward.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: { activateAfter: '5m' } });
    expect(res.statusCode).toBe(200);
    expect(res.json().slots.map((s: { state: string }) => s.state)).toEqual(['active', 'prepared']);
  });

  it('issues a JWT-SVID to an authenticated workload and refuses an anonymous one', async () => {
    h = await startHarness();
    expect((await h.meshward.http.inject({ method: 'POST', url: '/v1/svids/jwt', payload: { audience: ['x'] } })).statusCode).toBe(401);
    const res = await h.meshward.http.inject({ method: 'POST', url: '/v1/svids/jwt', headers: { authorization: `Bearer ${await h.token('shop', 'orders')}` }, payload: { audience: ['payments'] } });
    expect(res.statusCode).toBe(200);
    expect(res.json().spiffeId).toBe(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`);
  });
});
