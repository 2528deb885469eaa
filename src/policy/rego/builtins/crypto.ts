/** crypto.*: hashes, HMAC, X.509 certificates, CSRs, key pairs and private keys. */
import 'reflect-metadata';
import { createHash, createHmac, createPrivateKey, X509Certificate as NodeCertificate, timingSafeEqual } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fromJSON, type Value } from '../value.ts';
import { fail, stringArg } from './args.ts';
import { builtin, type BuiltinContext, type BuiltinDefinition } from './definition.ts';
import { BuiltinError } from './errors.ts';
import { decodeAllPem } from './keys.ts';
import { T_ANY, T_BOOLEAN, T_STRING, tArray, T_OBJECT_ANY } from './types.ts';

const S = T_STRING;

function hash(alg: string): (a: Value[]) => string {
  return (a) => createHash(alg).update(stringArg(a, 0), 'utf8').digest('hex');
}

function hmac(alg: string): (a: Value[]) => string {
  return (a) => createHmac(alg, Buffer.from(stringArg(a, 1), 'utf8')).update(stringArg(a, 0), 'utf8').digest('hex');
}

// ----- input decoding ------------------------------------------------------------------------

/** Go's StdEncoding.DecodeString strictness for the "base64 of PEM or DER" inputs. */
function strictBase64(s: string): Buffer {
  const clean = s.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
    const bad = /[^A-Za-z0-9+/=]/.exec(clean);
    fail(`illegal base64 data at input byte ${bad ? bad.index : clean.length}`);
  }
  return Buffer.from(clean, 'base64');
}

/** DER blobs from PEM text, base64 of PEM, or base64 of (concatenated) DER. */
function derBlobs(input: string, pemType: string, malformed = 'x509: malformed certificate'): Buffer[] {
  let text = input;
  if (!text.includes('-----BEGIN')) {
    const raw = strictBase64(text);
    const asText = raw.toString('latin1');
    if (!asText.includes('-----BEGIN')) return splitDer(raw, malformed);
    text = asText;
  }
  const blocks = decodeAllPem(text).filter((b) => b.type === pemType);
  if (blocks.length === 0) fail(`failed to find any PEM ${pemType} blocks`);
  return blocks.map((b) => b.der);
}

/** Splits concatenated DER SEQUENCEs. */
function splitDer(buf: Buffer, malformed: string): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    if (buf[i] !== 0x30 || i + 2 > buf.length) fail(malformed);
    let len = buf[i + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || i + 2 + n > buf.length) fail(malformed);
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + buf[i + 2 + k]!;
      header = 2 + n;
    }
    if (i + header + len > buf.length) fail(malformed);
    out.push(buf.subarray(i, i + header + len));
    i += header + len;
  }
  return out;
}

// ----- certificate JSON (the fields of Go's x509.Certificate that policies read) -------------

function nameObject(name: x509.Name): Value {
  const field = (t: string) => name.getField(t);
  const one = (t: string) => field(t)[0] ?? '';
  const many = (t: string): Value => {
    const v = field(t);
    return v.length ? v : null;
  };
  const names = name.toJSON().flatMap((rdn) => Object.entries(rdn).flatMap(([type, values]) => values.map((value) => ({ Type: type, Value: value }))));
  return fromJSON({
    CommonName: one('CN'),
    SerialNumber: one('2.5.4.5'),
    Country: many('C'),
    Organization: many('O'),
    OrganizationalUnit: many('OU'),
    Locality: many('L'),
    Province: many('ST'),
    StreetAddress: many('STREET'),
    PostalCode: many('2.5.4.17'),
    Names: names,
  });
}

const KEY_USAGE_BITS: Array<[number, number]> = [
  [x509.KeyUsageFlags.digitalSignature, 1],
  [x509.KeyUsageFlags.nonRepudiation, 2],
  [x509.KeyUsageFlags.keyEncipherment, 4],
  [x509.KeyUsageFlags.dataEncipherment, 8],
  [x509.KeyUsageFlags.keyAgreement, 16],
  [x509.KeyUsageFlags.keyCertSign, 32],
  [x509.KeyUsageFlags.cRLSign, 64],
  [x509.KeyUsageFlags.encipherOnly, 128],
  [x509.KeyUsageFlags.decipherOnly, 256],
];

function sanLists(san: x509.SubjectAlternativeNameExtension | null) {
  const items = san?.names.items ?? [];
  const of = (t: string): Value => {
    const v = items.filter((n) => n.type === t).map((n) => n.value);
    return v.length ? v : null;
  };
  return { DNSNames: of('dns'), EmailAddresses: of('email'), IPAddresses: of('ip'), URIStrings: of('url') };
}

function algorithmName(alg: object): string {
  const a = alg as { name?: string; hash?: { name?: string } };
  return [a.name, a.hash?.name].filter(Boolean).join(' ');
}

function certificateObject(der: Buffer): Value {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch (err) {
    fail(`x509: malformed certificate: ${(err as Error).message}`);
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const serial = BigInt(`0x${cert.serialNumber || '0'}`);
  return fromJSON({
    Raw: der.toString('base64'),
    Version: 3,
    SerialNumber: serial,
    Subject: nameObject(cert.subjectName),
    Issuer: nameObject(cert.issuerName),
    NotBefore: cert.notBefore.toISOString().replace('.000Z', 'Z'),
    NotAfter: cert.notAfter.toISOString().replace('.000Z', 'Z'),
    KeyUsage: ku ? KEY_USAGE_BITS.reduce((acc, [flag, bit]) => (ku.usages & flag ? acc | bit : acc), 0) : 0,
    ExtKeyUsage: eku ? eku.usages.map(String) : null,
    BasicConstraintsValid: bc !== null,
    IsCA: bc?.ca ?? false,
    MaxPathLen: bc?.pathLength ?? (bc ? -1 : 0),
    SubjectKeyId: ski ? Buffer.from(ski.keyId, 'hex').toString('base64') : null,
    AuthorityKeyId: aki?.keyId ? Buffer.from(aki.keyId, 'hex').toString('base64') : null,
    SignatureAlgorithm: algorithmName(cert.signatureAlgorithm),
    PublicKeyAlgorithm: cert.publicKey.algorithm.name,
    Signature: Buffer.from(cert.signature).toString('base64'),
    Extensions: cert.extensions.map((e) => ({ Id: e.type, Critical: e.critical, Value: Buffer.from(e.value).toString('base64') })),
    ...sanLists(cert.getExtension(x509.SubjectAlternativeNameExtension)),
  } as Record<string, unknown>);
}

function parseCertificates(input: string): Value[] {
  return derBlobs(input, 'CERTIFICATE').map(certificateObject);
}

/**
 * OPA's order: the first certificate is the trusted root, the last the leaf, the rest intermediates.
 * Returns the verified chain leaf first (as Go's Verify does), or undefined. Every certificate on the
 * chain must be valid at the evaluation time and every issuer a CA.
 */
function verifyChain(ders: Buffer[], ctx: BuiltinContext): Buffer[] | undefined {
  if (ders.length < 2) return undefined;
  const nowMs = Number(ctx.now() / 1_000_000n);
  try {
    const certs = ders.map((d) => new NodeCertificate(d));
    const valid = (c: NodeCertificate) => Date.parse(c.validFrom) <= nowMs && Date.parse(c.validTo) >= nowMs;
    const root = certs[0]!;
    const pool = certs.slice(1, -1);
    const chain = [certs.length - 1];
    let current = certs[certs.length - 1]!;
    for (let depth = 0; depth <= pool.length; depth++) {
      if (!valid(current)) return undefined;
      if (current.checkIssued(root) && current.verify(root.publicKey) && root.ca && valid(root)) {
        chain.push(0);
        return chain.map((i) => ders[i]!);
      }
      const next = pool.findIndex((p) => p.ca && !chain.includes(certs.indexOf(p)) && current.checkIssued(p) && current.verify(p.publicKey));
      if (next < 0) return undefined;
      chain.push(next + 1);
      current = pool[next]!;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

function parseAndVerify(args: Value[], ctx: BuiltinContext): Value {
  const input = stringArg(args, 0);
  let ders: Buffer[];
  try {
    ders = derBlobs(input, 'CERTIFICATE');
  } catch {
    return [false, []];
  }
  const chain = verifyChain(ders, ctx);
  return chain ? [true, chain.map(certificateObject)] : [false, []];
}

function parseCsr(input: string): Value {
  const [der] = derBlobs(input, 'CERTIFICATE REQUEST', 'asn1: structure error: tags don\'t match');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(der!);
  } catch (err) {
    fail(`asn1: structure error: ${(err as Error).message}`);
  }
  return fromJSON({
    Raw: der!.toString('base64'),
    Version: 0,
    Subject: nameObject(csr.subjectName),
    SignatureAlgorithm: algorithmName(csr.signatureAlgorithm),
    PublicKeyAlgorithm: csr.publicKey.algorithm.name,
    Extensions: csr.extensions.map((e) => ({ Id: e.type, Critical: e.critical, Value: Buffer.from(e.value).toString('base64') })),
    ...sanLists((csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as x509.SubjectAlternativeNameExtension | undefined) ?? null),
  } as Record<string, unknown>);
}

/** PEM text or base64 of PEM. */
function pemText(input: string): string {
  if (input.includes('-----BEGIN')) return input;
  return strictBase64(input).toString('utf8');
}

function privateKeyJwk(der: Buffer, type: string): Value {
  const format = type === 'RSA PRIVATE KEY' ? 'pkcs1' : type === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs8';
  const key = createPrivateKey({ key: der, format: 'der', type: format });
  return fromJSON(key.export({ format: 'jwk' }));
}

function parseRsaPrivateKey(input: string): Value {
  const blocks = decodeAllPem(pemText(input));
  const block = blocks[0];
  if (!block) fail('failed to parse PEM block containing the key');
  try {
    return privateKeyJwk(block.der, block.type);
  } catch (err) {
    fail(`failed to parse RSA private key: ${(err as Error).message}`);
  }
}

function parsePrivateKeys(input: string): Value {
  if (input === '') return null;
  let text: string;
  try {
    text = pemText(input);
  } catch {
    return [];
  }
  const out: Value[] = [];
  for (const b of decodeAllPem(text)) {
    if (!b.type.endsWith('PRIVATE KEY')) continue;
    try {
      out.push(privateKeyJwk(b.der, b.type));
    } catch {
      // Skip blocks that are not keys we can read, as OPA does.
    }
  }
  return out;
}

function parseKeypair(certInput: string, keyInput: string): Value {
  const ders = derBlobs(certInput, 'CERTIFICATE');
  const keyBlocks = decodeAllPem(pemText(keyInput)).filter((b) => b.type.endsWith('PRIVATE KEY'));
  if (keyBlocks.length === 0) fail('tls: failed to find any PEM data in key input');
  let jwk: Value;
  try {
    jwk = privateKeyJwk(keyBlocks[0]!.der, keyBlocks[0]!.type);
    const pub = new NodeCertificate(ders[0]!).publicKey.export({ format: 'jwk' });
    const priv = createPrivateKey({ key: keyBlocks[0]!.der, format: 'der', type: keyBlocks[0]!.type === 'RSA PRIVATE KEY' ? 'pkcs1' : keyBlocks[0]!.type === 'EC PRIVATE KEY' ? 'sec1' : 'pkcs8' }).export({ format: 'jwk' });
    if ((pub.n ?? pub.x) !== (priv.n ?? priv.x)) fail('tls: private key does not match public key');
  } catch (err) {
    if (err instanceof BuiltinError) throw err;
    fail(`tls: ${(err as Error).message}`);
  }
  return { Certificate: ders.map((d) => d.toString('base64')), PrivateKey: jwk };
}

export const CRYPTO: readonly BuiltinDefinition[] = [
  builtin('crypto.md5', [S], S, hash('md5')),
  builtin('crypto.sha1', [S], S, hash('sha1')),
  builtin('crypto.sha256', [S], S, hash('sha256')),
  builtin('crypto.hmac.md5', [S, S], S, hmac('md5')),
  builtin('crypto.hmac.sha1', [S, S], S, hmac('sha1')),
  builtin('crypto.hmac.sha256', [S, S], S, hmac('sha256')),
  builtin('crypto.hmac.sha512', [S, S], S, hmac('sha512')),
  builtin('crypto.hmac.equal', [S, S], T_BOOLEAN, (a) => {
    const x = Buffer.from(stringArg(a, 0), 'utf8');
    const y = Buffer.from(stringArg(a, 1), 'utf8');
    return x.length === y.length && timingSafeEqual(x, y);
  }),
  builtin('crypto.x509.parse_certificates', [S], tArray(T_OBJECT_ANY), (a) => parseCertificates(stringArg(a, 0))),
  builtin('crypto.x509.parse_and_verify_certificates', [S], tArray(T_ANY), parseAndVerify, { nondeterministic: true }),
  builtin('crypto.x509.parse_certificate_request', [S], T_OBJECT_ANY, (a) => parseCsr(stringArg(a, 0))),
  builtin('crypto.x509.parse_keypair', [S, S], T_OBJECT_ANY, (a) => parseKeypair(stringArg(a, 0), stringArg(a, 1))),
  builtin('crypto.x509.parse_rsa_private_key', [S], T_OBJECT_ANY, (a) => parseRsaPrivateKey(stringArg(a, 0))),
  builtin('crypto.parse_private_keys', [S], tArray(T_OBJECT_ANY), (a) => parsePrivateKeys(stringArg(a, 0))),
];
