/**
 * PKCS#10 certificate signing requests (pure): parse, check the self-signature, return the public
 * key. P-256 / ECDSA-SHA256, what agents send, is checked by p256-verify.ts (the native addon when
 * built); every other key and algorithm with node:crypto. Everything else the CSR asks for
 * (subject, SANs, extensions) is ignored: the CA issues only the identity the caller authenticated as.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { children, decodeOid, pemToDer, raw, readTlv, TAG, value } from './der.ts';
import { csrInvalid } from './errors.ts';
import { p256Point, p256PublicKey } from './p256.ts';
import { verifyP256 } from './p256-verify.ts';
import type { LeafKeyKind } from './template.ts';
import { OID } from './x509.ts';

const SIGNATURE_HASHES: Record<string, string | null> = {
  [OID.ecdsaWithSha256]: 'sha256', [OID.ecdsaWithSha384]: 'sha384', [OID.ecdsaWithSha512]: 'sha512',
  [OID.sha256WithRsa]: 'sha256', [OID.sha384WithRsa]: 'sha384', [OID.sha512WithRsa]: 'sha512',
  [OID.ed25519]: null,
};

export interface ParsedCsr {
  spki: Buffer;
  publicKey: KeyObject;
  keyKind: LeafKeyKind;
}

export function keyKindOf(key: KeyObject): LeafKeyKind {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== 'prime256v1' && curve !== 'secp384r1') throw csrInvalid(`EC curve ${curve} is not accepted (P-256 or P-384)`);
    return 'ec';
  }
  if (type === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw csrInvalid('RSA keys must be at least 2048 bits');
    return 'rsa';
  }
  if (type === 'ed25519') return 'ed25519';
  throw csrInvalid(`key type ${type} is not accepted (EC P-256/P-384, RSA ≥ 2048, Ed25519)`);
}

/** A verified P-256 CSR: its KeyObject is built only if asked for (the issuer needs the SPKI only). */
function p256Csr(spki: Buffer): ParsedCsr {
  let key: KeyObject | undefined;
  return {
    spki,
    keyKind: 'ec',
    get publicKey() {
      key ??= p256PublicKey(spki)!;
      return key;
    },
  };
}

/** Accepts PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER. */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const text = typeof input === 'string' ? input : undefined;
  const der = text !== undefined ? pemToDer(text, /(?:NEW )?CERTIFICATE REQUEST/)[0] : input as Buffer;
  if (!der || der.length === 0) throw csrInvalid('no PEM "CERTIFICATE REQUEST" block found');
  let info: Buffer;
  let spki: Buffer;
  let algorithm: string;
  let signature: Buffer;
  try {
    const top = readTlv(der, 0);
    const [infoTlv, algTlv, sigTlv] = children(der, top);
    if (top.tag !== TAG.SEQUENCE || !infoTlv || !algTlv || sigTlv?.tag !== TAG.BIT_STRING) throw new Error('not a CertificationRequest');
    info = raw(der, infoTlv);
    const infoParts = children(der, infoTlv);
    spki = raw(der, infoParts[2]!);
    algorithm = decodeOid(value(der, children(der, algTlv)[0]!));
    signature = der.subarray(sigTlv.valueStart + 1, sigTlv.end);
  } catch (err) {
    throw csrInvalid(`CSR is not valid DER: ${(err as Error).message}`, err);
  }
  if (!(algorithm in SIGNATURE_HASHES)) throw csrInvalid(`CSR signature algorithm ${algorithm} is not supported`);
  const point = algorithm === OID.ecdsaWithSha256 ? p256Point(spki) : undefined;
  if (point) {
    if (!verifyP256(point, info, signature)) throw csrInvalid('CSR signature does not verify (the request was not signed by the P-256 key it carries, or that key is not on the curve)');
    return p256Csr(spki);
  }
  let publicKey: KeyObject;
  let fastP256: KeyObject | undefined;
  try {
    // P-256 with another hash: imported from its coordinates (see p256.ts); anything else via OpenSSL.
    fastP256 = p256PublicKey(spki);
    publicKey = fastP256 ?? createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw csrInvalid('CSR public key cannot be read', err);
  }
  const keyKind = fastP256 ? 'ec' : keyKindOf(publicKey);
  let ok = false;
  try {
    ok = verify(SIGNATURE_HASHES[algorithm]!, info, publicKey, signature);
  } catch (err) {
    throw csrInvalid('CSR signature does not match its key type', err);
  }
  if (!ok) throw csrInvalid('CSR signature does not verify (the request was not signed by the key it carries)');
  return { spki, publicKey, keyKind };
}
