import type { webcrypto } from 'node:crypto';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCa, removeDir, type TestCa, TRUST_DOMAIN } from './helpers.ts';

const CALLER = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
let ca: TestCa | undefined;
afterEach(() => {
  ca?.records.close();
  if (ca) removeDir(ca.dir);
  ca = undefined;
});

async function csrPem(uri?: string): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys, signingAlgorithm: alg, extensions: uri ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] : [],
  });
  return csr.toString('pem');
}

/** Rows another connection sees: what a restarted process would find. */
function committedSerials(dir: string): string[] {
  const db = new Database(path.join(dir, 'ca', 'certificates.db'), { readonly: true });
  try {
    return (db.prepare('SELECT serial FROM certificates').all() as { serial: string }[]).map((r) => r.serial);
  } finally {
    db.close();
  }
}

describe('issued-certificate records, group commit', () => {
  it('answers every certificate of a batch only once all their records are committed', async () => {
    ca = createTestCa();
    const csrs = await Promise.all(Array.from({ length: 20 }, () => csrPem()));
    // All twenty are issued in one turn, so they share one transaction.
    const pending = csrs.map((c) => ca!.issuer.issueForCsrRecorded(c, CALLER, { requestedBy: CALLER }));
    expect(committedSerials(ca.dir)).toEqual([]);
    const svids = await Promise.all(pending);
    expect(committedSerials(ca.dir).sort()).toEqual(svids.map((s) => s.serial).sort());
  });

  it('refuses to hand out a certificate whose record cannot be written', async () => {
    ca = createTestCa();
    await ca.issuer.issueForCsrRecorded(await csrPem(), CALLER, { requestedBy: CALLER });
    const csr = await csrPem();
    const other = new Database(path.join(ca.dir, 'ca', 'certificates.db'));
    other.exec('DROP TABLE certificates');
    other.close();
    await expect(ca.issuer.issueForCsrRecorded(csr, CALLER, { requestedBy: CALLER })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('CSR parsing, P-256 fast path', () => {
  it('issues for a P-256 CSR over its own key, with the caller\'s identity, not the one the CSR asks for', async () => {
    ca = createTestCa();
    const svid = await ca.issuer.issueForCsrRecorded(await csrPem(`spiffe://${TRUST_DOMAIN}/ns/kube-system/sa/admin`), CALLER, { requestedBy: CALLER });
    const leaf = new X509Certificate(svid.certDer);
    expect(leaf.subjectAltName).toBe(`URI:${CALLER}`);
  });

  it('refuses a P-256 CSR signed by another key than the one it carries', async () => {
    ca = createTestCa();
    const der = Buffer.from((await csrPem()).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    // Re-sign the CertificationRequestInfo with a different key: well-formed, wrong signer.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const infoLen = der.readUInt16BE(6) + 4; // 30 82 LL LL | 30 82 ll ll ...
    const info = der.subarray(4, 4 + infoLen);
    const alg = Buffer.from('300a06082a8648ce3d040302', 'hex');
    const sig = sign('sha256', info, other.privateKey);
    const bits = Buffer.concat([Buffer.from([0x03, sig.length + 1, 0x00]), sig]);
    const body = Buffer.concat([info, alg, bits]);
    const forged = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
    expect(() => ca!.issuer.issueForCsr(forged, CALLER, { requestedBy: CALLER })).toThrow(expect.objectContaining({ code: 'CSR_INVALID' }));
    expect(ca.issuer.issueForCsr(der, CALLER, { requestedBy: CALLER }).spiffeId).toBe(CALLER);
  });
});
