import type { webcrypto } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { spiffeBundle } from '../../src/ca/bundle.ts';
import { createTestCa, ecKey, removeDir, TRUST_DOMAIN } from './helpers.ts';

const ca = createTestCa();
afterAll(() => {
  ca.records.close();
  removeDir(ca.dir);
});

const CALLER = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

async function csrFor(names: { uri?: string; cn?: string }, keys?: webcrypto.CryptoKeyPair): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const pair = keys ?? (await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: names.cn ? `CN=${names.cn}` : undefined,
    keys: pair,
    signingAlgorithm: alg,
    extensions: names.uri ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: names.uri }])] : [],
  });
  return csr.toString('pem');
}

describe('issuer', () => {
  it('issues only the caller\'s identity for a CSR that asks for another one', async () => {
    const csr = await csrFor({ uri: `spiffe://${TRUST_DOMAIN}/ns/kube-system/sa/admin`, cn: 'admin' });
    const svid = ca.issuer.issueForCsr(csr, CALLER, { requestedBy: CALLER });
    const cert = new X509Certificate(svid.certDer);
    expect(cert.subjectAltName).toBe(`URI:${CALLER}`);
    expect(cert.subject ?? '').toBe('');
  });

  it('uses the CSR\'s public key', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
    const svid = ca.issuer.issueForCsr(await csrFor({}, keys), CALLER, { requestedBy: CALLER });
    const spki = Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey));
    expect(new X509Certificate(svid.certDer).publicKey.export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
  });

  it('refuses a CSR whose signature does not verify', async () => {
    const pem = await csrFor({});
    const der = x509.PemConverter.decodeFirst(pem);
    const bytes = Buffer.from(der);
    bytes[bytes.length - 5]! ^= 0xff;
    expect(() => ca.issuer.issueForCsr(bytes, CALLER, { requestedBy: CALLER })).toThrow(expect.objectContaining({ code: 'CSR_INVALID' }));
  });

  it('refuses input that is not a CSR', () => {
    expect(() => ca.issuer.issueForCsr('hello', CALLER, { requestedBy: CALLER })).toThrow(expect.objectContaining({ code: 'CSR_INVALID' }));
  });

  it.each([
    ['a bad trust domain character', 'spiffe://Example.org/ns/a/sa/b'],
    ['an empty segment', `spiffe://${TRUST_DOMAIN}/ns//sa/b`],
    ['a dot-dot segment', `spiffe://${TRUST_DOMAIN}/ns/../sa/b`],
    ['a query', `spiffe://${TRUST_DOMAIN}/ns/a?x`],
    ['a fragment', `spiffe://${TRUST_DOMAIN}/ns/a#x`],
    ['over 2048 bytes', `spiffe://${TRUST_DOMAIN}/${'x'.repeat(2100)}`],
    ['another trust domain', 'spiffe://other.org/ns/a/sa/b'],
    ['no path', `spiffe://${TRUST_DOMAIN}`],
  ])('refuses to issue for an ID with %s', (_what, id) => {
    expect(() => ca.issuer.issue({ spiffeId: id, spki: ecKey().spki, keyKind: 'ec', requestedBy: 't', method: 'api' }))
      .toThrow(expect.objectContaining({ code: 'SPIFFE_ID_INVALID' }));
  });

  it('clamps a requested lifetime to the workload TTL and never outlives the CA', () => {
    const svid = ca.issuer.issue({ spiffeId: CALLER, spki: ecKey().spki, keyKind: 'ec', ttlMs: 30 * 86_400_000, requestedBy: 't', method: 'api' });
    expect(svid.notAfter - ca.clock.now()).toBe(3_600_000);
    const short = ca.issuer.issue({ spiffeId: CALLER, spki: ecKey().spki, keyKind: 'ec', ttlMs: 10 * 60_000, requestedBy: 't', method: 'api' });
    expect(short.notAfter - ca.clock.now()).toBe(10 * 60_000);
  });

  it('issues JWT-SVIDs with sub, aud and a short exp, verifiable with the published bundle', async () => {
    const { token, expiresAt } = await ca.issuer.issueJwt(CALLER, ['payments']);
    expect(expiresAt - ca.clock.now()).toBe(5 * 60_000);
    const bundle = await spiffeBundle(ca.authority.bundle(), 300);
    const kid = decodeProtectedHeader(token).kid;
    const jwk = bundle.keys.find((k) => k.use === 'jwt-svid' && k.kid === kid)!;
    const { payload } = await jwtVerify(token, await importJWK(jwk, 'ES256'), { audience: 'payments', currentDate: new Date(ca.clock.now()) });
    expect(payload.sub).toBe(CALLER);
    await expect(jwtVerify(token, await importJWK(jwk, 'ES256'), { audience: 'other', currentDate: new Date(ca.clock.now()) })).rejects.toThrow();
    await expect(ca.issuer.issueJwt(CALLER, [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('publishes roots as x509-svid keys with x5c in the SPIFFE bundle', async () => {
    const bundle = await spiffeBundle(ca.authority.bundle(), 300);
    const x509Keys = bundle.keys.filter((k) => k.use === 'x509-svid');
    expect(x509Keys).toHaveLength(1);
    expect(Buffer.from(x509Keys[0]!.x5c![0]!, 'base64').equals(ca.authority.active().root)).toBe(true);
    expect(bundle.spiffe_sequence).toBe(ca.authority.bundle().sequence);
    expect(bundle.spiffe_refresh_hint).toBe(300);
  });

  it('records every certificate with who asked', () => {
    const svid = ca.issuer.issue({ spiffeId: CALLER, spki: ecKey().spki, keyKind: 'ec', requestedBy: 'tester', method: 'api' });
    const { records } = ca.records.list({ serial: svid.serial, limit: 10 });
    expect(records).toEqual([{ serial: svid.serial, spiffeId: CALLER, notBefore: svid.notBefore, notAfter: svid.notAfter, issuedAt: svid.issuedAt, requestedBy: 'tester', method: 'api', caSlot: svid.caSlot }]);
  });
});
