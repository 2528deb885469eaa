/**
 * The native P-256 verifier (src/ca/native, loaded by p256-verify.ts) against node:crypto, over a
 * generated corpus: both must give the expected verdict for every case. What each malformed input
 * does, decided here: everything but a valid signature (low- or high-S) is refused, by both.
 * The native cases need the addon (built by `npm ci`; .ci/run fails without it); the node:crypto
 * ones always run.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { nativeP256Verifier, p256VerifyImplementation, type P256Verifier, verifyP256, verifyP256NodeCrypto } from '../../src/ca/p256-verify.ts';

const ADDON = new URL('../../build/native/p256_verify.node', import.meta.url).pathname;
const built = existsSync(ADDON);
const native = nativeP256Verifier();

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G = { x: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n, y: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n };

const hex = (v: bigint, bytes = 32) => Buffer.from(v.toString(16).padStart(bytes * 2, '0'), 'hex');
const big = (b: Buffer) => BigInt(`0x${b.toString('hex') || '0'}`);

/** Minimal DER INTEGER of a non-negative value, or of raw content bytes as given (malformed cases). */
function derInt(v: bigint | Buffer): Buffer {
  let body = Buffer.isBuffer(v) ? v : hex(v, Math.max(1, Math.ceil(v.toString(16).length / 2)));
  if (!Buffer.isBuffer(v) && body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}
const derSeq = (...parts: Buffer[]) => { const body = Buffer.concat(parts); return Buffer.concat([Buffer.from([0x30, body.length]), body]); };
const derSig = (r: bigint | Buffer, s: bigint | Buffer) => derSeq(derInt(r), derInt(s));

/** r and s of node's (canonical, short-form) DER signature. */
function rs(sig: Buffer): { r: bigint; s: bigint } {
  const rLen = sig[3]!;
  return { r: big(sig.subarray(4, 4 + rLen)), s: big(sig.subarray(6 + rLen)) };
}

interface Case { name: string; point: Buffer; message: Buffer; signature: Buffer; valid: boolean }

const pointOf = (key: KeyObject) => key.export({ type: 'spki', format: 'der' }).subarray(-65);

function casesFor(i: number, other: Buffer): Case[] {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const point = pointOf(publicKey);
  const message = randomBytes(200 + i);
  const signature = sign('sha256', message, privateKey);
  const { r, s } = rs(signature);
  const at = (name: string, over: Partial<Case>, valid = false): Case => ({ name: `${name} #${i}`, point, message, signature, valid, ...over });
  const flipped = (buf: Buffer, bit: number) => { const b = Buffer.from(buf); b[bit >> 3]! ^= 1 << (bit & 7); return b; };
  const notOnCurve = Buffer.from(point); notOnCurve[64]! ^= 1;
  const cases = [
    at('valid', {}, true),
    at('valid, high-S (n - s): OpenSSL does not require low-S', { signature: derSig(r, N - s) }, true),
    at('tampered message', { message: flipped(message, 8 * 17 + 3) }),
    at('another key', { point: other }),
    at('r = 0', { signature: derSig(0n, s) }),
    at('s = 0', { signature: derSig(r, 0n) }),
    at('r = n', { signature: derSig(N, s) }),
    at('s = n', { signature: derSig(r, N) }),
    at('r + n (same r mod n)', { signature: derSig(r + N, s) }),
    at('s + n (same s mod n)', { signature: derSig(r, s + N) }),
    at('r and s swapped', { signature: derSig(s, r) }),
    at('trailing zero byte', { signature: Buffer.concat([signature, Buffer.from([0])]) }),
    at('trailing empty SEQUENCE', { signature: Buffer.concat([signature, Buffer.from([0x30, 0])]) }),
    at('SEQUENCE length one too long', { signature: Buffer.concat([Buffer.from([0x30, signature[1]! + 1]), signature.subarray(2), Buffer.from([0])]) }),
    at('SEQUENCE length one too short', { signature: Buffer.concat([Buffer.from([0x30, signature[1]! - 1]), signature.subarray(2)]) }),
    at('r length one too long', { signature: (() => { const b = Buffer.from(signature); b[3]! += 1; return b; })() }),
    at('long-form SEQUENCE length (BER)', { signature: Buffer.concat([Buffer.from([0x30, 0x81, signature[1]!]), signature.subarray(2)]) }),
    at('non-minimal r (extra 00)', { signature: derSig(Buffer.concat([Buffer.from([0, 0]), hex(r)]), s) }),
    at('non-minimal s (extra 00)', { signature: derSig(r, Buffer.concat([Buffer.from([0, 0]), hex(s)])) }),
    at('r as a negative INTEGER (pad dropped, high bit set)', { signature: derSig(hex(r | (1n << 255n)), s) }),
    at('r || s, not DER', { signature: Buffer.concat([hex(r), hex(s)]) }),
    at('empty signature', { signature: Buffer.alloc(0) }),
    at('SEQUENCE of one INTEGER', { signature: derSeq(derInt(r)) }),
    at('point not on the curve (y + 1 bit)', { point: notOnCurve }),
    at('compressed point (02/03 ‖ X): not taken here', { point: Buffer.concat([Buffer.from([2 + Number(big(point.subarray(33)) & 1n)]), point.subarray(1, 33)]) }),
    at('hybrid point (06/07 ‖ X ‖ Y)', { point: Buffer.concat([Buffer.from([6 + Number(big(point.subarray(33)) & 1n)]), point.subarray(1)]) }),
    at('point of 64 bytes', { point: point.subarray(0, 64) }),
    at('point at infinity (00)', { point: Buffer.from([0]) }),
    at('x = p', { point: Buffer.concat([Buffer.from([4]), hex(P), point.subarray(33)]) }),
  ];
  for (let k = 0; k < 6; k++) cases.push(at(`signature bit ${k} flipped`, { signature: flipped(signature, (i * 7 + k * 97) % (signature.length * 8)) }));
  return cases;
}

function corpus(keys: number): Case[] {
  const cases: Case[] = [];
  let other: Buffer = pointOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
  for (let i = 0; i < keys; i++) {
    const next = casesFor(i, other);
    other = next[0]!.point;
    cases.push(...next);
  }
  return cases;
}

const CORPUS = corpus(12);

function verdicts(v: P256Verifier): string[] {
  return CORPUS.filter((c) => v(c.point, c.message, c.signature) !== c.valid).map((c) => c.name);
}

describe('P-256 verification: the corpus', () => {
  it('has ≥ 300 cases, valid and invalid', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(300);
    expect(CORPUS.filter((c) => c.valid).length).toBe(24);
  });

  it('node:crypto gives the expected verdict on every case', () => {
    expect(verdicts(verifyP256NodeCrypto)).toEqual([]);
  });

  it.skipIf(!built || process.env.MESHWARD_NATIVE_CRYPTO === '0')('the native addon gives the expected verdict on every case (so the same as node:crypto)', () => {
    expect(native, p256VerifyImplementation().reason).toBeDefined();
    expect(verdicts(native!)).toEqual([]);
  });

  it.skipIf(!built || process.env.MESHWARD_NATIVE_CRYPTO === '0')('verifyP256 uses the built addon', () => {
    expect(p256VerifyImplementation()).toEqual({ implementation: 'native' });
    const c = CORPUS[0]!;
    expect(verifyP256(c.point, c.message, c.signature)).toBe(true);
    expect(verifyP256(CORPUS[2]!.point, CORPUS[2]!.message, CORPUS[2]!.signature)).toBe(false);
  });
});

/** Affine P-256 arithmetic, enough to forge a signature for a public key without its private key. */
const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;
function inv(a: bigint, m: bigint): bigint {
  let [r0, r1, t0, t1] = [mod(a, m), m, 1n, 0n];
  while (r1 !== 0n) { const q = r0 / r1; [r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1]; }
  return mod(t0, m);
}
type Pt = { x: bigint; y: bigint } | null;
function add(a: Pt, b: Pt): Pt {
  if (!a) return b;
  if (!b) return a;
  if (a.x === b.x && mod(a.y + b.y, P) === 0n) return null;
  const l = a.x === b.x ? mod(3n * a.x * a.x - 3n, P) * inv(2n * a.y, P) : mod(b.y - a.y, P) * inv(b.x - a.x, P);
  const x = mod(l * l - a.x - b.x, P);
  return { x, y: mod(l * (a.x - x) - a.y, P) };
}
function mul(k: bigint, p: Pt): Pt {
  let acc: Pt = null;
  for (let bit = 255n; bit >= 0n; bit--) { acc = add(acc, acc); if ((k >> bit) & 1n) acc = add(acc, p); }
  return acc;
}
const powMod = (b: bigint, e: bigint, m: bigint) => { let r = 1n; b = mod(b, m); for (; e > 0n; e >>= 1n, b = b * b % m) if (e & 1n) r = r * b % m; return r; };

/** A point with x < 2^224, so that x + p still fits in 32 bytes (a non-canonical coordinate). */
function smallXPoint(): { x: bigint; y: bigint } {
  for (let x = 1n; ; x++) {
    const rhs = mod(x ** 3n - 3n * x + B, P);
    const y = powMod(rhs, (P + 1n) / 4n, P);
    if (y * y % P === rhs) return { x, y };
  }
}

describe.skipIf(!built)('the native addon, called directly', () => {
  // Required lazily: a skipped describe still runs its body.
  const addon = { verify: (...args: unknown[]) => (createRequire(import.meta.url)(ADDON) as { verify: (...a: unknown[]) => boolean }).verify(...args) };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const point = pointOf(publicKey);
  const message = Buffer.from('m');
  const digest = createHash('sha256').update(message).digest();
  const signature = sign('sha256', message, privateKey);

  it('refuses coordinates ≥ p, where the same point canonically encoded verifies', () => {
    const Q = smallXPoint();
    // (r, s) valid for digest e under Q: R = u1·G + u2·Q, r = R.x, s = r/u2, e = u1·s (no private key needed).
    const [u1, u2] = [big(randomBytes(31)), big(randomBytes(31))];
    const r = mod(add(mul(u1, G), mul(u2, Q))!.x, N);
    const s = mod(r * inv(u2, N), N);
    const e = hex(mod(u1 * s, N));
    const canonical = Buffer.concat([Buffer.from([4]), hex(Q.x), hex(Q.y)]);
    const xPlusP = Buffer.concat([Buffer.from([4]), hex(Q.x + P), hex(Q.y)]);
    expect(addon.verify(canonical, e, derSig(r, s))).toBe(true);
    expect(addon.verify(xPlusP, e, derSig(r, s))).toBe(false);
    expect(verifyP256NodeCrypto(xPlusP, message, derSig(r, s))).toBe(false); // node:crypto refuses the key
  });

  it('throws for a digest that is not 32 bytes and for arguments that are not buffers', () => {
    expect(addon.verify(point, digest, signature)).toBe(true);
    expect(() => addon.verify(point, digest.subarray(0, 31), signature)).toThrow(RangeError);
    expect(() => addon.verify(point, Buffer.concat([digest, Buffer.from([0])]), signature)).toThrow(RangeError);
    expect(() => addon.verify(point, digest.toString('hex'), signature)).toThrow(TypeError);
    expect(() => addon.verify(point, digest)).toThrow(TypeError);
  });

  it('loads in worker threads (one P-256 group per environment) and keeps working after a worker exits', async () => {
    const script = `
      const { parentPort, workerData: w } = require('node:worker_threads');
      const { verify } = require(w.addon);
      parentPort.postMessage([verify(Buffer.from(w.point), Buffer.from(w.digest), Buffer.from(w.signature)), verify(Buffer.from(w.point), Buffer.alloc(32), Buffer.from(w.signature))]);`;
    const runs = Array.from({ length: 3 }, () => new Promise((resolve, reject) => {
      const worker = new Worker(script, { eval: true, workerData: { addon: ADDON, point, digest, signature } });
      worker.once('message', (m) => { resolve(m); void worker.terminate(); });
      worker.once('error', reject);
    }));
    expect(await Promise.all(runs)).toEqual([[true, false], [true, false], [true, false]]);
    expect(addon.verify(point, digest, signature)).toBe(true);
  });
});
