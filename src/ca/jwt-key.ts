/**
 * The JWT-SVID signing key of a plugged-in CA, derived from the CA's private key (HKDF-SHA256):
 * every replica reading the same cacerts files signs JWT-SVIDs with the same key, so one `kid`
 * is in every replica's bundle, without sharing any state. One-way: the derived key reveals
 * nothing of the CA key, and whoever holds the CA key can already sign X509-SVIDs.
 */
import { createECDH, createPrivateKey, hkdfSync, type KeyObject } from 'node:crypto';

/** The order n of the P-256 group. */
const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const INFO = 'meshward jwt-svid key v1';

export function derivedJwtKey(caKey: KeyObject): KeyObject {
  const ikm = caKey.export({ type: 'pkcs8', format: 'der' });
  // 48 bytes reduced mod n-1, plus 1: a scalar in [1, n-1] with negligible bias (FIPS 186-5 A.2.1).
  const okm = Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), INFO, 48));
  const d = (BigInt(`0x${okm.toString('hex')}`) % (P256_ORDER - 1n)) + 1n;
  const scalar = Buffer.from(d.toString(16).padStart(64, '0'), 'hex');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey(); // 0x04 ‖ X ‖ Y
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: scalar.toString('base64url'), x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
}
