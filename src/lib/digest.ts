/**
 * One-shot digests: `crypto.hash` (Node ≥ 20.12) skips the Hash object (≈ 0.5 µs less per call
 * on a 400-byte input, measured here); older Nodes fall back to createHash.
 */
import * as nodeCrypto from 'node:crypto';

type OneShotHash = (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer;
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;

function digest(algorithm: 'sha1' | 'sha256', data: Buffer): Buffer {
  return oneShot ? oneShot(algorithm, data, 'buffer') : nodeCrypto.createHash(algorithm).update(data).digest();
}

export const sha1 = (data: Buffer): Buffer => digest('sha1', data);
export const sha256 = (data: Buffer): Buffer => digest('sha256', data);
