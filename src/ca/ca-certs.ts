/** Root and intermediate CA certificates for meshward's own (development or production) CA. */
import { createPublicKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { derToPem } from './der.ts';
import { type SigningAuthority, signCaCertificate } from './template.ts';
import { keyIdentifier, name, readCertificate, subjectKeyIdOf } from './x509.ts';

/** CA keys are ECDSA P-256: fast to sign with and what SPIRE defaults to. */
export function generateCaKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

export const spkiOf = (key: KeyObject): Buffer => createPublicKey(key).export({ type: 'spki', format: 'der' });

export interface CaCertOptions {
  trustDomain: string;
  now: number;
  ttlMs: number;
  /** Backdating of notBefore. */
  skewMs: number;
  /** Distinguishes successive CAs in their subject (e.g. a slot id). */
  label: string;
}

export function createRootCertificate(key: KeyObject, o: CaCertOptions): Buffer {
  const subject = name({ organization: o.trustDomain, commonName: `meshward root CA ${o.label}` });
  const spki = spkiOf(key);
  return signCaCertificate({
    subject, issuer: subject, spki, notBefore: o.now - o.skewMs, notAfter: o.now + o.ttlMs,
    authorityKeyId: keyIdentifier(spki), trustDomainId: `spiffe://${o.trustDomain}`,
  }, key);
}

/** An intermediate signed by `root`; its lifetime is clamped to the root's. */
export function createIntermediateCertificate(key: KeyObject, root: { der: Buffer; key: KeyObject }, o: CaCertOptions): Buffer {
  const rootFields = readCertificate(root.der);
  const rootNotAfter = Date.parse(new X509Certificate(root.der).validTo);
  return signCaCertificate({
    subject: name({ organization: o.trustDomain, commonName: `meshward intermediate CA ${o.label}` }),
    issuer: rootFields.subject,
    spki: spkiOf(key),
    notBefore: o.now - o.skewMs,
    notAfter: Math.min(o.now + o.ttlMs, rootNotAfter),
    authorityKeyId: subjectKeyIdOf(rootFields),
    pathLen: 0,
    trustDomainId: `spiffe://${o.trustDomain}`,
  }, root.key);
}

/** What the leaf template needs from a signing CA certificate and its key. */
export function signingAuthorityOf(certDer: Buffer, key: KeyObject): SigningAuthority {
  const fields = readCertificate(certDer);
  return { key, subject: fields.subject, subjectKeyId: subjectKeyIdOf(fields), notAfter: Date.parse(new X509Certificate(certDer).validTo) };
}

export const certPem = (der: Buffer): string => derToPem(der, 'CERTIFICATE');
