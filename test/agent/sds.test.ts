import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reader, SECRET_TYPE, type DeltaResponseMsg, type DiscoveryResponseMsg, type SecretMsg } from '../sds/harness.ts';
import { type AgentUnderTest, MeshwardProcess, noMetadata, ORDERS, startTestAgent, TRUST_DOMAIN } from './harness.ts';

let mw: MeshwardProcess;
let a: AgentUnderTest;
beforeEach(async () => {
  mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m');
  await mw.start();
  a = await startTestAgent(mw, await mw.token('shop', 'orders'));
});
afterEach(async () => {
  await a.close();
  await mw.close();
});

const byName = (res: DiscoveryResponseMsg) => new Map(res.resources.map((r) => [r.name, r]));
const pemCerts = (pem: string): string[] => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];

async function meshwardBundlePem(): Promise<string> {
  const res = await fetch(`${mw.apiUrl}/v1/bundle.pem`);
  return res.text();
}

/** openssl verify of the leaf against meshward's published bundle, intermediates untrusted. */
function opensslVerifies(chainPem: string, bundlePem: string): boolean {
  const [leaf, ...intermediates] = pemCerts(chainPem);
  const files = { leaf: path.join(a.dir, 'leaf.pem'), chain: path.join(a.dir, 'chain.pem'), roots: path.join(a.dir, 'roots.pem') };
  writeFileSync(files.leaf, leaf!);
  writeFileSync(files.chain, intermediates.join(''));
  writeFileSync(files.roots, bundlePem);
  // The fake clock is in 2026-01-01; check the chain at that instant.
  const at = String(Math.floor(mw.clock.now() / 1000));
  try {
    execFileSync('openssl', ['verify', '-attime', at, '-CAfile', files.roots, ...(intermediates.length ? ['-untrusted', files.chain] : []), files.leaf], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function checkCertificateSecret(secret: SecretMsg): string {
  const chainPem = secret.tls_certificate!.certificate_chain.inline_bytes.toString();
  const leaf = new X509Certificate(pemCerts(chainPem)[0]!);
  expect(leaf.subjectAltName).toBe(`URI:${ORDERS}`);
  expect(leaf.checkPrivateKey(createPrivateKey(secret.tls_certificate!.private_key.inline_bytes))).toBe(true);
  return chainPem;
}

describe('agent SDS on a Unix socket', () => {
  it('serves default and ROOTCA to an Envoy-shaped client with no credential; the leaf verifies (openssl) against meshward\'s bundle and was issued by CSR', async () => {
    const stream = a.sdsClient().StreamSecrets(noMetadata());
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], node: { id: 'sidecar~127.0.0.1~orders-1.shop~shop.svc.cluster.local' } });
    const first = await r.next();
    const secrets = byName(first);
    const chainPem = checkCertificateSecret(secrets.get('default')!);
    const bundle = await meshwardBundlePem();
    expect(secrets.get('ROOTCA')!.validation_context!.trusted_ca.inline_bytes.toString()).toBe(bundle);
    expect(opensslVerifies(chainPem, bundle)).toBe(true);
    // A foreign bundle does not verify it (the check can fail).
    const other = new MeshwardProcess('');
    await other.start();
    const foreign = await (await fetch(`${other.apiUrl}/v1/bundle.pem`)).text();
    await other.close();
    expect(opensslVerifies(chainPem, foreign)).toBe(false);
    // meshward recorded a CSR issuance for this serial, not a server-generated key.
    const serial = new X509Certificate(pemCerts(chainPem)[0]!).serialNumber.toLowerCase();
    const auditor = mw.meshward!.apiAuth.createToken('aud', 'auditor');
    const listed = await mw.meshward!.http.inject({ method: 'GET', url: `/v1/certificates?spiffeId=${encodeURIComponent(ORDERS)}`, headers: { authorization: `Bearer ${auditor}` } });
    expect(listed.json().certificates.map((c: { serial: string; method: string }) => ({ serial: c.serial, method: c.method }))).toEqual([{ serial, method: 'csr' }]);
    stream.end();
  });

  it('serves the certificate under the SPIFFE ID and the bundle under the trust domain ID, and refuses another SPIFFE ID', async () => {
    const stream = a.sdsClient().StreamSecrets(noMetadata());
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: [ORDERS, `spiffe://${TRUST_DOMAIN}`] });
    const secrets = byName(await r.next());
    checkCertificateSecret(secrets.get(ORDERS)!);
    expect(secrets.get(`spiffe://${TRUST_DOMAIN}`)!.validation_context).toBeDefined();
    stream.end();
    const other = a.sdsClient().StreamSecrets(noMetadata());
    const r2 = reader(other);
    other.write({ type_url: SECRET_TYPE, resource_names: [`spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`] });
    await expect(r2.next()).rejects.toMatchObject({ code: 7 /* PERMISSION_DENIED */ });
  });

  it('serves Delta SDS, and pushes the renewed certificate (a new key) at half its life on an ACKed stream', async () => {
    const stream = a.sdsClient().DeltaSecrets(noMetadata());
    const r = reader(stream as never) as { next(): Promise<DeltaResponseMsg> };
    stream.write({ type_url: SECRET_TYPE, resource_names_subscribe: ['default', 'ROOTCA'] });
    const first = await r.next();
    expect(first.resources.map((x) => x.name).sort()).toEqual(['ROOTCA', 'default']);
    const before = first.resources.find((x) => x.name === 'default')!.resource;
    stream.write({ type_url: SECRET_TYPE, response_nonce: first.nonce });
    mw.clock.advance(5 * 60_000 + 1000);
    const renewed = await r.next();
    expect(renewed.resources.map((x) => x.name)).toEqual(['default']);
    const after = renewed.resources[0]!.resource;
    checkCertificateSecret(after);
    expect(after.tls_certificate!.private_key.inline_bytes.equals(before.tls_certificate!.private_key.inline_bytes)).toBe(false);
    stream.end();
  });

  it('follows a root rotation: ROOTCA is pushed with both roots at the next bundle poll, and the renewed leaf chains to the new root', async () => {
    const stream = a.sdsClient().StreamSecrets(noMetadata());
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'] });
    const first = await r.next();
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: first.version_info, response_nonce: first.nonce });
    const oldRoots = pemCerts(await meshwardBundlePem());
    const admin = mw.meshward!.apiAuth.createToken('adm', 'admin');
    const rotated = await mw.meshward!.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: { newRoot: true, activateAfter: '2m' } });
    expect(rotated.statusCode).toBe(200);
    const both = await meshwardBundlePem();
    expect(pemCerts(both)).toHaveLength(2);
    mw.clock.advance(60_000); // the agent's bundle poll
    const pushed = await r.next();
    expect(byName(pushed).get('ROOTCA')!.validation_context!.trusted_ca.inline_bytes.toString()).toBe(both);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: pushed.version_info, response_nonce: pushed.nonce });
    // The new CA activates at 2 min; the renewal at 5 min is signed under the new root.
    mw.clock.advance(4 * 60_000 + 1000);
    const firstSerial = new X509Certificate(pemCerts(checkCertificateSecret(byName(first).get('default')!))[0]!).serialNumber;
    let renewed = await r.next();
    while (new X509Certificate(pemCerts(checkCertificateSecret(byName(renewed).get('default')!))[0]!).serialNumber === firstSerial) renewed = await r.next();
    const chainPem = checkCertificateSecret(byName(renewed).get('default')!);
    const newRoot = pemCerts(both).find((p) => !oldRoots.includes(p))!;
    expect(opensslVerifies(chainPem, newRoot)).toBe(true);
    expect(opensslVerifies(chainPem, oldRoots.join(''))).toBe(false);
    stream.end();
  });

  it('creates the socket with mode 0600', () => {
    expect(statSync(a.socket).isSocket()).toBe(true);
    expect(statSync(a.socket).mode & 0o777).toBe(0o600);
  });
});
