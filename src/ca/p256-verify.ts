/**
 * ECDSA P-256 / SHA-256 verification against a raw public point, for CSR signatures: the native
 * addon (src/ca/native/p256_verify.c, built on install) when it is there and passes its self-test,
 * else node:crypto. Both give the same verdicts (test/ca/p256-verify.test.ts); the addon skips
 * node:crypto's per-key cost (JWK import + OpenSSL 3's provider conversion): ≈ 55 instead of
 * ≈ 120–175 µs CPU per CSR.
 *
 * MESHWARD_NATIVE_CRYPTO=0 forces node:crypto (tests, comparison); =1 makes a missing or broken
 * addon an error (CI). Resolved once, on first use.
 */
import { verify } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../lib/digest.ts';
import { MeshwardError } from '../lib/errors.ts';
import { p256KeyFromPoint } from './p256.ts';

/** `point`: 65 bytes, 04 ‖ X ‖ Y; `signature`: DER ECDSA-Sig-Value over SHA-256(message). */
export type P256Verifier = (point: Buffer, message: Buffer, signature: Buffer) => boolean;
export type P256VerifyImplementation = 'native' | 'node:crypto';

interface Addon {
  verify(point: Buffer, digest: Buffer, signature: Buffer): boolean;
}

/** Where scripts/build-native.mjs leaves the addon (build/native/): the same path from src/ca/ and dist/ca/. */
const ADDON_PATH = fileURLToPath(new URL('../../build/native/p256_verify.node', import.meta.url));

/** node:crypto: the key imported from its coordinates, then verified (what meshward did before). */
export const verifyP256NodeCrypto: P256Verifier = (point, message, signature) => {
  try {
    return verify('sha256', message, p256KeyFromPoint(point), signature);
  } catch {
    return false; // not a 65-byte uncompressed point, or not on the curve
  }
};

/** One known signature (made with node:crypto): the addon must accept it and refuse it tampered. */
const SELF_TEST = {
  point: Buffer.from('046a8eaa93f736a81ae70eec8a513162dd9a53225e0b427e3e2d64b2394ef123a48c67be241627a6343987434a97022a4745e175605a3c0408c5ce241203ef9687', 'hex'),
  message: Buffer.from('meshward native self-test'),
  signature: Buffer.from('304402205814b01c8165afb12c886476464ac594889bd527b708417acaa56d8ca6eb6a3c02203c01e8a42146bc96c4bee6ac3c3e0f7dc72ddf82d09fa6ee91a44340a97ddae3', 'hex'),
};

function passesSelfTest(v: P256Verifier): boolean {
  const { point, message, signature } = SELF_TEST;
  return v(point, message, signature) && !v(point, Buffer.from('tampered'), signature) && verifyP256NodeCrypto(point, message, signature);
}

interface Resolved {
  native?: P256Verifier;
  /** Why node:crypto is used, when it is. */
  reason?: string;
}

function loadNative(): Resolved {
  if (process.env.MESHWARD_NATIVE_CRYPTO === '0') return { reason: 'MESHWARD_NATIVE_CRYPTO=0' };
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (err) {
    return { reason: `native addon not loaded (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; build it with \`npm run build:native\`)` };
  }
  const native: P256Verifier = (point, message, signature) => addon.verify(point, sha256(message), signature) === true;
  return passesSelfTest(native) ? { native } : { reason: 'native addon failed its self-test' };
}

let resolved: Resolved | undefined;

function resolve(): Resolved {
  if (resolved) return resolved;
  resolved = loadNative();
  if (!resolved.native && process.env.MESHWARD_NATIVE_CRYPTO === '1') {
    throw new MeshwardError('INTERNAL', `MESHWARD_NATIVE_CRYPTO=1 but ${resolved.reason} (${ADDON_PATH})`);
  }
  return resolved;
}

/** The addon's verifier, undefined when node:crypto is in use (tests and benchmarks compare both). */
export function nativeP256Verifier(): P256Verifier | undefined {
  return resolve().native;
}

/** Which implementation `verifyP256` uses, and why node:crypto when it is (for the startup log). */
export function p256VerifyImplementation(): { implementation: P256VerifyImplementation; reason?: string } {
  const { native, reason } = resolve();
  return native ? { implementation: 'native' } : { implementation: 'node:crypto', reason };
}

/** True when `signature` is a valid ECDSA P-256 / SHA-256 signature of `message` by `point`. */
export function verifyP256(point: Buffer, message: Buffer, signature: Buffer): boolean {
  return (resolve().native ?? verifyP256NodeCrypto)(point, message, signature);
}
