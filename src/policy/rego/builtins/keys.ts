/** Key material for JWT verification: PEM certificates, PEM public keys, JWKs and JWK sets. */
import { createPublicKey, createSecretKey, type KeyObject, X509Certificate } from 'node:crypto';
import { BuiltinError } from './errors.ts';

export interface VerificationKey {
  key: KeyObject;
  kid?: string;
  alg?: string;
}

interface PemBlock {
  type: string;
  der: Buffer;
  rest: string;
}

/** Go's pem.Decode for the first block; `rest` is what follows its END line. */
export function decodePem(text: string): PemBlock | undefined {
  const m = /-----BEGIN ([^-\r\n]+)-----\r?\n([\s\S]*?)-----END \1-----[ \t]*(?:\r?\n)?/.exec(text);
  if (!m) return undefined;
  const body = m[2]!.replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*=*$/.test(body)) return undefined;
  return { type: m[1]!, der: Buffer.from(body, 'base64'), rest: text.slice(m.index + m[0].length) };
}

/** All PEM blocks of a text (stops at the first undecodable part). */
export function decodeAllPem(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  let rest = text;
  for (;;) {
    const b = decodePem(rest);
    if (!b) return out;
    out.push(b);
    rest = b.rest;
  }
}

function jwkKey(jwk: Record<string, unknown>): VerificationKey {
  const key =
    jwk.kty === 'oct'
      ? createSecretKey(Buffer.from(String(jwk.k ?? ''), 'base64url'))
      : createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const out: VerificationKey = { key };
  if (typeof jwk.kid === 'string') out.kid = jwk.kid;
  if (typeof jwk.alg === 'string') out.alg = jwk.alg;
  return out;
}

const keyCache = new Map<string, VerificationKey[]>();

/** OPA's getKeysFromCertOrJWK, cached by text (bounded): parsing PEM/JWK dominates verification. */
export function keysFromCertOrJwk(text: string): VerificationKey[] {
  let keys = keyCache.get(text);
  if (!keys) {
    keys = parseKeys(text);
    if (keyCache.size >= 256) keyCache.clear();
    keyCache.set(text, keys);
  }
  return keys;
}

const secretCache = new Map<string, KeyObject>();

/** An HMAC secret as a KeyObject, cached (bounded). */
export function secretKey(secret: string): KeyObject {
  let key = secretCache.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    if (secretCache.size >= 256) secretCache.clear();
    secretCache.set(secret, key);
  }
  return key;
}

function parseKeys(text: string): VerificationKey[] {
  if (text.startsWith('-----BEGIN')) {
    const block = decodePem(text);
    if (!block) throw new BuiltinError('failed to decode a PEM block');
    if (block.rest.trim() !== '') throw new BuiltinError('extra data after a PEM certificate block');
    if (block.type === 'CERTIFICATE') {
      try {
        return [{ key: new X509Certificate(block.der).publicKey }];
      } catch {
        throw new BuiltinError('failed to parse a PEM certificate');
      }
    }
    if (block.type === 'PUBLIC KEY' || block.type === 'RSA PUBLIC KEY') {
      try {
        return [{ key: createPublicKey({ key: block.der, format: 'der', type: block.type === 'PUBLIC KEY' ? 'spki' : 'pkcs1' }) }];
      } catch {
        throw new BuiltinError('failed to parse a PEM public key');
      }
    }
    throw new BuiltinError('failed to extract a Key from the PEM certificate');
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (Array.isArray(parsed.keys)) return (parsed.keys as Array<Record<string, unknown>>).map(jwkKey);
    return [jwkKey(parsed)];
  } catch {
    throw new BuiltinError('failed to parse a JWK key (set)');
  }
}
