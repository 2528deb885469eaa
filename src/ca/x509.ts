/**
 * X.509 building blocks (pure apart from node:crypto hashing/signing): signature algorithms by
 * key type, extensions, Names, and reading the few fields of a CA certificate the issuer needs.
 */
import { type KeyObject, sign } from 'node:crypto';
import { sha1 } from '../lib/digest.ts';
import { bitString, children, decodeOid, explicit, NULL, oid, octetString, raw, readTlv, seq, set, tlv, TAG, TRUE, value } from './der.ts';

export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  rsaPss: '1.2.840.113549.1.1.10',
  ed25519: '1.3.101.112',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface SignatureScheme {
  /** DER AlgorithmIdentifier to place in the TBS and the certificate. */
  algorithmIdentifier: Buffer;
  /** Digest for node:crypto sign (null for Ed25519). */
  hash: string | null;
}

/** The signature algorithm a CA key signs with (ECDSA with the curve's hash, RSA PKCS#1 v1.5 SHA-256, Ed25519). */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return { algorithmIdentifier: seq(oid(OID.ecdsaWithSha256)), hash: 'sha256' };
    if (curve === 'secp384r1' || curve === 'P-384') return { algorithmIdentifier: seq(oid(OID.ecdsaWithSha384)), hash: 'sha384' };
    if (curve === 'secp521r1' || curve === 'P-521') return { algorithmIdentifier: seq(oid(OID.ecdsaWithSha512)), hash: 'sha512' };
    throw new Error(`unsupported EC curve ${curve}`);
  }
  if (type === 'rsa') return { algorithmIdentifier: seq(oid(OID.sha256WithRsa), NULL), hash: 'sha256' };
  if (type === 'ed25519') return { algorithmIdentifier: seq(oid(OID.ed25519)), hash: null };
  throw new Error(`unsupported CA key type ${type}`);
}

/** Signs a TBSCertificate and wraps it into a Certificate. */
export function signCertificate(tbs: Buffer, scheme: SignatureScheme, key: KeyObject): Buffer {
  const signature = sign(scheme.hash, tbs, key);
  return seq(tbs, scheme.algorithmIdentifier, bitString(signature));
}

export function extension(id: string, critical: boolean, der: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, octetString(der)) : seq(oid(id), octetString(der));
}

/** RFC 5280 KeyUsage bits, numbered as in the RFC. */
export const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;

export function keyUsageValue(bits: number[]): Buffer {
  let byte = 0;
  for (const b of bits) byte |= 0x80 >> b;
  let unused = 0;
  while (unused < 7 && !(byte & (1 << unused))) unused++;
  return bitString(Buffer.from([byte]), unused);
}

export function basicConstraintsValue(ca: boolean, pathLen?: number): Buffer {
  if (!ca) return seq();
  return pathLen === undefined ? seq(TRUE) : seq(TRUE, tlv(TAG.INTEGER, Buffer.from([pathLen])));
}

export const extKeyUsageValue = (...oids: string[]): Buffer => seq(...oids.map(oid));
export const uriSanValue = (uri: string): Buffer => seq(tlv(0x86, Buffer.from(uri, 'utf8')));
export const akiValue = (keyId: Buffer): Buffer => seq(tlv(0x80, keyId));

/** Name with O and CN (either may be omitted). */
export function name(parts: { organization?: string; commonName?: string }): Buffer {
  const rdns: Buffer[] = [];
  if (parts.organization) rdns.push(set(seq(oid(OID.organization), tlv(TAG.UTF8_STRING, Buffer.from(parts.organization, 'utf8')))));
  if (parts.commonName) rdns.push(set(seq(oid(OID.commonName), tlv(TAG.UTF8_STRING, Buffer.from(parts.commonName, 'utf8')))));
  return seq(...rdns);
}

/** The subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const top = readTlv(spki, 0);
  const [, bits] = children(spki, top);
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new Error('SubjectPublicKeyInfo has no BIT STRING');
  return spki.subarray(bits.valueStart + 1, bits.end);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  return sha1(subjectPublicKeyBits(spki));
}

export interface CertificateFields {
  tbs: Buffer;
  serial: Buffer;
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  /** Extensions by OID: [critical, value DER]. */
  extensions: Map<string, { critical: boolean; value: Buffer }>;
}

/** The fields of a DER certificate, as raw DER slices. */
export function readCertificate(der: Buffer): CertificateFields {
  const cert = readTlv(der, 0);
  const [tbsTlv] = children(der, cert);
  const parts = children(der, tbsTlv!);
  let i = parts[0]!.tag === 0xa0 ? 1 : 0;
  const serial = value(der, parts[i++]!);
  i++; // signature algorithm
  const issuer = raw(der, parts[i++]!);
  i++; // validity
  const subject = raw(der, parts[i++]!);
  const spki = raw(der, parts[i++]!);
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  const extWrapper = parts.find((p) => p.tag === 0xa3);
  if (extWrapper) {
    const [list] = children(der, extWrapper);
    for (const ext of children(der, list!)) {
      const fields = children(der, ext);
      const critical = fields.length === 3 && der[fields[1]!.valueStart] !== 0;
      extensions.set(decodeOid(value(der, fields[0]!)), { critical, value: value(der, fields[fields.length - 1]!) });
    }
  }
  return { tbs: raw(der, tbsTlv!), serial, issuer, subject, spki, extensions };
}

/** The certificate's SubjectKeyIdentifier, or the RFC 5280 method-1 hash when it has none. */
export function subjectKeyIdOf(fields: CertificateFields): Buffer {
  const ski = fields.extensions.get(OID.subjectKeyIdentifier);
  if (ski) return value(ski.value, readTlv(ski.value, 0));
  return keyIdentifier(fields.spki);
}

export { explicit };
