import { randomBytes } from 'node:crypto';

/**
 * Decision ids are UUIDs, as the OPA-Envoy plugin's decision_id, but version 7 (RFC 9562):
 * time-ordered, so audit inserts append to the index instead of scattering across it (about a
 * third cheaper in the audit benchmark than random v4 ids).
 */
// randomBytes per id showed as 8% of the audit path's main thread: draw ids from a pooled buffer.
const POOL_IDS = 256;
let pool = randomBytes(16 * POOL_IDS);
let poolIndex = 0;

export function newDecisionId(now = Date.now()): string {
  if (poolIndex === POOL_IDS) {
    pool = randomBytes(16 * POOL_IDS);
    poolIndex = 0;
  }
  const bytes = pool.subarray(poolIndex * 16, ++poolIndex * 16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Opaque nonce for xDS/SDS responses. */
export function newNonce(): string {
  return randomBytes(8).toString('hex');
}
