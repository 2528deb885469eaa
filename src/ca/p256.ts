/**
 * P-256 workload keys without OpenSSL's encoders (pure byte layout). node:crypto's DER/PEM export
 * goes through OpenSSL 3's encoder lookup and costs ~200 µs per key, ten times the key generation
 * itself; the JWK export is cheap, and P-256 SPKI / PKCS#8 are fixed layouts around its x, y, d.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { derToPem } from './der.ts';

/** SEQ { SEQ { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused) 04 … } up to the point. */
export const SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
/** PKCS#8 with the ECPrivateKey (RFC 5915) carrying the public key, as OpenSSL writes it. */
const PKCS8_PREFIX = Buffer.from('308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420', 'hex');
const PKCS8_PUBLIC_TAG = Buffer.from('a144034200', 'hex');
const UNCOMPRESSED = Buffer.from([0x04]);

/** The 65-byte uncompressed point (04 ‖ X ‖ Y) of a P-256 SPKI in the fixed layout above, else undefined. */
export function p256Point(spki: Buffer): Buffer | undefined {
  if (spki.length !== SPKI_PREFIX.length + 65 || !spki.subarray(0, SPKI_PREFIX.length).equals(SPKI_PREFIX) || spki[SPKI_PREFIX.length] !== 0x04) return undefined;
  return spki.subarray(SPKI_PREFIX.length);
}

/**
 * A P-256 public key from its uncompressed point. Imported from its coordinates (JWK), which
 * OpenSSL checks are on the curve: ≈ 40 % cheaper than parsing the DER through OpenSSL 3's
 * decoders, and the curve is known without asking the key. Throws for a point not on the curve.
 */
export function p256KeyFromPoint(point: Buffer): KeyObject {
  if (point.length !== 65 || point[0] !== 0x04) throw new RangeError('a P-256 point is 65 bytes, 04 ‖ X ‖ Y');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.toString('base64url', 1, 33), y: point.toString('base64url', 33, 65) }, format: 'jwk' });
}

/** The public key of a P-256 SPKI (the fixed layout above), undefined for any other SPKI. */
export function p256PublicKey(spki: Buffer): KeyObject | undefined {
  const point = p256Point(spki);
  return point && p256KeyFromPoint(point);
}

export interface P256KeyPair {
  /** DER SubjectPublicKeyInfo. */
  spki: Buffer;
  /** PEM PKCS#8 private key. */
  privateKeyPem: string;
}

export function generateP256(): P256KeyPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const d = Buffer.from(jwk.d!, 'base64url');
  if (x.length !== 32 || y.length !== 32 || d.length !== 32) throw new Error('unexpected P-256 JWK coordinate length');
  const point = Buffer.concat([UNCOMPRESSED, x, y]);
  return {
    spki: Buffer.concat([SPKI_PREFIX, point]),
    privateKeyPem: derToPem(Buffer.concat([PKCS8_PREFIX, d, PKCS8_PUBLIC_TAG, point]), 'PRIVATE KEY'),
  };
}
