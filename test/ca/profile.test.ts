import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate as NodeX509 } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, describe, expect, it } from 'vitest';
import { certPem } from '../../src/ca/ca-certs.ts';
import { createTestCa, ecKey, removeDir, TRUST_DOMAIN } from './helpers.ts';

const ca = createTestCa();
afterAll(() => {
  ca.records.close();
  removeDir(ca.dir);
});

const SPIFFE_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

function issueEc() {
  const key = ecKey();
  return { key, svid: ca.issuer.issue({ spiffeId: SPIFFE_ID, spki: key.spki, keyKind: 'ec', requestedBy: 'test', method: 'api' }) };
}

describe('X509-SVID profile', () => {
  it('has exactly the SPIFFE X509-SVID fields, checked with @peculiar/x509', async () => {
    const { svid, key } = issueEc();
    const leaf = new x509.X509Certificate(svid.certDer);
    const signer = ca.authority.active();
    const intermediate = new x509.X509Certificate(signer.chain[0]!);

    expect(leaf.subject).toBe('');
    expect(leaf.issuer).toBe(intermediate.subject);
    expect(leaf.serialNumber).toMatch(/^[0-9a-f]{32}$/);
    expect(leaf.serialNumber).toBe(svid.serial);
    expect(leaf.signatureAlgorithm).toMatchObject({ name: 'ECDSA' });

    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.critical).toBe(true);
    expect(san.names.items.map((n) => [n.type, n.value])).toEqual([['url', SPIFFE_ID]]);

    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);

    const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);

    const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect([...eku.usages].sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);

    const ski = leaf.getExtension(x509.SubjectKeyIdentifierExtension)!;
    const expectedSki = await x509.SubjectKeyIdentifierExtension.create(await crypto.subtle.importKey('spki', key.spki, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']));
    expect(ski.keyId).toBe(expectedSki.keyId);
    const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);

    // notBefore backdated by the clock skew, notAfter one workload TTL ahead.
    const now = ca.clock.now();
    expect(leaf.notBefore.getTime()).toBe(now - 60_000);
    expect(leaf.notAfter.getTime()).toBe(now + 3_600_000);
    expect(await leaf.verify({ publicKey: intermediate.publicKey, signatureOnly: true })).toBe(true);
  });

  it('builds a chain from the leaf to the root', async () => {
    const { svid } = issueEc();
    const signer = ca.authority.active();
    const chain = await new x509.X509ChainBuilder({ certificates: [new x509.X509Certificate(signer.chain[0]!), new x509.X509Certificate(signer.root)] })
      .build(new x509.X509Certificate(svid.certDer));
    expect(chain.length).toBe(3);
    expect(new NodeX509(signer.root).verify(new NodeX509(signer.root).publicKey)).toBe(true);
  });

  it('adds keyEncipherment for RSA workload keys', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const svid = ca.issuer.issue({ spiffeId: SPIFFE_ID, spki: publicKey.export({ type: 'spki', format: 'der' }), keyKind: 'rsa', requestedBy: 't', method: 'api' });
    const ku = new x509.X509Certificate(svid.certDer).getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  });

  it('gives every certificate a different serial', () => {
    const serials = new Set(Array.from({ length: 200 }, () => issueEc().svid.serial));
    expect(serials.size).toBe(200);
  });

  it('starts each serial with its issuance time so later serials sort after earlier ones, and keeps 80 random bits after it', () => {
    const before = Date.now();
    const svids = Array.from({ length: 50 }, () => issueEc().svid);
    const after = Date.now();
    const millis = svids.map((s) => Number.parseInt(s.serial.slice(0, 12), 16) - 0x800000000000);
    expect(Math.min(...millis)).toBeGreaterThanOrEqual(before);
    expect(Math.max(...millis)).toBeLessThanOrEqual(after);
    expect(millis).toEqual([...millis].sort((a, b) => a - b));
    const tails = new Set(svids.map((s) => s.serial.slice(12)));
    expect(tails.size).toBe(50);
    // 80 random bits: across 50 tails, every one of the 80 bit positions is seen both set and clear.
    const bits = svids.map((s) => BigInt(`0x${s.serial.slice(12)}`));
    for (let b = 0n; b < 80n; b++) expect(new Set(bits.map((v) => (v >> b) & 1n)).size).toBe(2);
  });

  it('signs CA certificates with CA=true and keyCertSign', () => {
    const signer = ca.authority.active();
    for (const der of [signer.chain[0]!, signer.root]) {
      const cert = new x509.X509Certificate(der);
      expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(true);
      expect(cert.getExtension(x509.KeyUsagesExtension)!.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
    }
    expect(new x509.X509Certificate(signer.chain[0]!).getExtension(x509.BasicConstraintsExtension)!.pathLength).toBe(0);
  });

  it.skipIf(!hasOpenssl())('passes openssl verify and prints the expected fields with openssl x509 -text', () => {
    const { svid } = issueEc();
    const signer = ca.authority.active();
    const dir = ca.dir;
    writeFileSync(path.join(dir, 'leaf.pem'), certPem(svid.certDer));
    writeFileSync(path.join(dir, 'int.pem'), signer.chainPem);
    writeFileSync(path.join(dir, 'root.pem'), signer.rootPem);
    // The fake clock sits in 2026-01-01; tell openssl to check at that time.
    const at = String(Math.floor(ca.clock.now() / 1000) + 10);
    const out = execFileSync('openssl', ['verify', '-attime', at, '-CAfile', path.join(dir, 'root.pem'), '-untrusted', path.join(dir, 'int.pem'), path.join(dir, 'leaf.pem')]).toString();
    expect(out.trim()).toBe(`${path.join(dir, 'leaf.pem')}: OK`);
    const partial = execFileSync('openssl', ['verify', '-attime', at, '-partial_chain', '-CAfile', path.join(dir, 'int.pem'), path.join(dir, 'leaf.pem')]).toString();
    expect(partial).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-in', path.join(dir, 'leaf.pem'), '-noout', '-text']).toString();
    expect(text).toContain(`URI:${SPIFFE_ID}`);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
  });

  it.skipIf(!hasOpenssl())('fails openssl verify against a root it does not chain to', () => {
    const { svid } = issueEc();
    const other = createTestCa();
    try {
      writeFileSync(path.join(ca.dir, 'leaf2.pem'), certPem(svid.certDer));
      writeFileSync(path.join(ca.dir, 'other-root.pem'), other.authority.active().rootPem);
      writeFileSync(path.join(ca.dir, 'int2.pem'), ca.authority.active().chainPem);
      const at = String(Math.floor(ca.clock.now() / 1000) + 10);
      expect(() => execFileSync('openssl', ['verify', '-attime', at, '-CAfile', path.join(ca.dir, 'other-root.pem'), '-untrusted', path.join(ca.dir, 'int2.pem'), path.join(ca.dir, 'leaf2.pem')], { stdio: 'pipe' })).toThrow();
    } finally {
      other.records.close();
      removeDir(other.dir);
    }
  });
});
