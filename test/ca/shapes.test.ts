import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, X509Certificate as NodeX509 } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, describe, expect, it } from 'vitest';
import { certPem, createIntermediateCertificate, createRootCertificate, signingAuthorityOf } from '../../src/ca/ca-certs.ts';
import { createLeafTemplate, type LeafKeyKind, signLeaf } from '../../src/ca/template.ts';
import { removeDir, tempDir } from './helpers.ts';

// Every combination of CA key and workload key the issuer can produce, parsed by two independent
// implementations (@peculiar/x509 and OpenSSL via node:crypto / the openssl CLI).
const dir = tempDir();
afterAll(() => removeDir(dir));

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

const caKeys: Record<string, () => KeyObject> = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
  'P-384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
  'RSA-2048': () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
};
// RSA key generation is slow: each key is made once and reused across cases.
const memo = <T>(make: () => T): (() => T) => {
  let value: T | undefined;
  return () => (value ??= make());
};
for (const kind of Object.keys(caKeys)) {
  const root = memo(caKeys[kind]!);
  const intermediate = memo(caKeys[kind]!);
  let n = 0;
  caKeys[kind] = () => (n++ % 2 === 0 ? root() : intermediate());
}
const leafKeys: Record<LeafKeyKind, () => Buffer> = {
  ec: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }),
  rsa: memo(() => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' })),
  ed25519: () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }),
};

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

const cases = Object.keys(caKeys).flatMap((ca) => (Object.keys(leafKeys) as LeafKeyKind[]).map((leaf) => [ca, leaf] as const));

describe('certificate shapes', () => {
  it.each(cases)('a %s CA signs a valid %s leaf', async (caKind, leafKind) => {
    const rootKey = caKeys[caKind]!();
    const root = createRootCertificate(rootKey, { trustDomain: 'example.org', now: NOW, ttlMs: 3650 * DAY, skewMs: 0, label: 'r' });
    const intKey = caKeys[caKind]!();
    const intermediate = createIntermediateCertificate(intKey, { der: root, key: rootKey }, { trustDomain: 'example.org', now: NOW, ttlMs: 365 * DAY, skewMs: 0, label: 'i' });
    const template = createLeafTemplate(signingAuthorityOf(intermediate, intKey));
    const id = 'spiffe://example.org/ns/a/sa/b';
    const { der } = signLeaf(template, { spki: leafKeys[leafKind](), keyKind: leafKind, spiffeId: id, notBefore: NOW, notAfter: NOW + 3_600_000 });

    const leaf = new x509.X509Certificate(der);
    expect(leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => n.value)).toEqual([id]);
    const usages = leaf.getExtension(x509.KeyUsagesExtension)!.usages;
    expect(usages & x509.KeyUsageFlags.keyCertSign).toBe(0);
    expect(Boolean(usages & x509.KeyUsageFlags.keyEncipherment)).toBe(leafKind === 'rsa');
    expect(new NodeX509(der).verify(new NodeX509(intermediate).publicKey)).toBe(true);
    expect(new NodeX509(intermediate).verify(new NodeX509(root).publicKey)).toBe(true);
    expect(await leaf.verify({ publicKey: new x509.X509Certificate(intermediate).publicKey, signatureOnly: true })).toBe(true);

    if (hasOpenssl()) {
      const base = path.join(dir, `${caKind}-${leafKind}`);
      writeFileSync(`${base}-leaf.pem`, certPem(der));
      writeFileSync(`${base}-int.pem`, certPem(intermediate));
      writeFileSync(`${base}-root.pem`, certPem(root));
      const out = execFileSync('openssl', ['verify', '-attime', String(NOW / 1000 + 60), '-CAfile', `${base}-root.pem`, '-untrusted', `${base}-int.pem`, `${base}-leaf.pem`]).toString();
      expect(out).toContain(': OK');
    }
  });

  it('encodes validity past 2049 as GeneralizedTime, as RFC 5280 requires', () => {
    const start = Date.UTC(2049, 11, 31, 23, 30);
    const key = caKeys['P-256']!();
    const root = createRootCertificate(key, { trustDomain: 'example.org', now: start, ttlMs: 3650 * DAY, skewMs: 0, label: 'r' });
    const template = createLeafTemplate(signingAuthorityOf(root, key));
    const { der } = signLeaf(template, { spki: leafKeys.ec(), keyKind: 'ec', spiffeId: 'spiffe://example.org/x', notBefore: start, notAfter: start + 3_600_000 });
    const leaf = new x509.X509Certificate(der);
    expect(leaf.notBefore.getTime()).toBe(start);
    expect(leaf.notAfter.getTime()).toBe(start + 3_600_000);
    expect(der.includes(Buffer.from('20500101003000Z'))).toBe(true);
  });
});
