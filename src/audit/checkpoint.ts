/**
 * Signed checkpoints of the audit chain (pure), as CloudTrail's digest files and Certificate
 * Transparency's signed tree heads: `{seq, hash, time}` of the newest durable record, signed with
 * an Ed25519 key of meshward's own. The hash chain pins every record up to a checkpointed one, so
 * a checkpoint kept outside the database proves that records up to its seq existed: a database
 * whose head is older, or whose record at that seq has another hash, lost records.
 *
 * The signed bytes are a fixed text form (not JSON, so no canonicalization question):
 * `meshward audit checkpoint v1\n<keyId>\n<seq>\n<hash>\n<time>\n`.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { AuditCheckpointInvalidError } from './errors.ts';

export interface CheckpointBody {
  /** seq of the newest durable record (0: empty log). */
  seq: number;
  /** That record's chain hash (the anchor's, or the genesis, when the log is empty). */
  hash: string;
  /** When it was signed, ms since the epoch. */
  time: number;
}

export interface SignedCheckpoint extends CheckpointBody {
  v: 1;
  /** Identifies the signing key: hex of the first 16 bytes of SHA-256 over its SPKI DER. */
  keyId: string;
  /** Ed25519 signature over `checkpointSignedBytes`, base64. */
  signature: string;
}

/** A checkpoint and where it came from (for messages). */
export interface LocatedCheckpoint {
  checkpoint: SignedCheckpoint;
  /** e.g. `checkpoints.ndjson:12`. */
  where: string;
}

const HASH = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{32}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function checkpointKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 32);
}

export function checkpointSignedBytes(keyId: string, body: CheckpointBody): Buffer {
  return Buffer.from(`meshward audit checkpoint v1\n${keyId}\n${body.seq}\n${body.hash}\n${body.time}\n`);
}

/** Signs with an Ed25519 private key (`keyId` is derived from it unless given). */
export function signCheckpoint(privateKey: KeyObject, body: CheckpointBody, keyId = checkpointKeyId(createPublicKey(privateKey))): SignedCheckpoint {
  const signature = sign(null, checkpointSignedBytes(keyId, body), privateKey).toString('base64');
  return { v: 1, seq: body.seq, hash: body.hash, time: body.time, keyId, signature };
}

/** One NDJSON line (with its newline). */
export function encodeCheckpoint(cp: SignedCheckpoint): string {
  return `${JSON.stringify({ v: cp.v, seq: cp.seq, hash: cp.hash, time: cp.time, keyId: cp.keyId, signature: cp.signature })}\n`;
}

/** Checks the shape of one decoded checkpoint; throws naming `where` and the field. */
export function checkpointFromJson(value: unknown, where: string): SignedCheckpoint {
  const bad = (what: string) => new AuditCheckpointInvalidError(`${where}: ${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a checkpoint object');
  const o = value as Record<string, unknown>;
  if (o.v !== 1) throw bad(`unknown checkpoint version ${JSON.stringify(o.v)} (expected 1)`);
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) throw bad('seq must be a non-negative integer');
  if (typeof o.hash !== 'string' || !HASH.test(o.hash)) throw bad('hash must be 64 lower-case hex digits');
  if (!Number.isSafeInteger(o.time) || (o.time as number) < 0) throw bad('time must be a non-negative integer (ms since the epoch)');
  if (typeof o.keyId !== 'string' || !KEY_ID.test(o.keyId)) throw bad('keyId must be 32 lower-case hex digits');
  if (typeof o.signature !== 'string' || !BASE64.test(o.signature)) throw bad('signature must be base64');
  return { v: 1, seq: o.seq as number, hash: o.hash, time: o.time as number, keyId: o.keyId, signature: o.signature };
}

/**
 * Reads checkpoints from a file's text: NDJSON (the published `checkpoints.ndjson`), one
 * checkpoint object (`checkpoint-latest.json`), or the API's answer (`{checkpoints: [...]}`).
 */
export function parseCheckpoints(text: string, source: string): LocatedCheckpoint[] {
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    whole = undefined;
  }
  if (typeof whole === 'object' && whole !== null && Array.isArray((whole as { checkpoints?: unknown }).checkpoints)) {
    return (whole as { checkpoints: unknown[] }).checkpoints.map((c, i) => ({ checkpoint: checkpointFromJson(c, `${source} checkpoints[${i}]`), where: `${source} checkpoints[${i}]` }));
  }
  if (whole !== undefined) return [{ checkpoint: checkpointFromJson(whole, `${source}:1`), where: `${source}:1` }];
  const out: LocatedCheckpoint[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new AuditCheckpointInvalidError(`${where}: not JSON`);
    }
    out.push({ checkpoint: checkpointFromJson(value, where), where });
  }
  return out;
}

/**
 * Refuses a checkpoint not signed by one of `trusted` (public keys by keyId), or whose signature
 * does not cover its fields (an altered seq, hash or time, or a forged signature).
 */
export function verifyCheckpointSignature(located: LocatedCheckpoint, trusted: ReadonlyMap<string, KeyObject>): void {
  const { checkpoint: cp, where } = located;
  const key = trusted.get(cp.keyId);
  if (!key) throw new AuditCheckpointInvalidError(`${where}: signed by key ${cp.keyId}, which is not a trusted checkpoint key (trusted: ${[...trusted.keys()].join(', ') || 'none'})`);
  const ok = verify(null, checkpointSignedBytes(cp.keyId, cp), key, Buffer.from(cp.signature, 'base64'));
  if (!ok) throw new AuditCheckpointInvalidError(`${where}: the signature does not match the checkpoint (seq ${cp.seq}): forged or altered`);
}

/** What the store holds where a checkpoint points. */
export interface StoreView {
  /** Newest record (or the anchor when empty). */
  head: { seq: number; hash: string };
  /** Retention anchor: records at or below its seq were deleted on purpose. */
  anchor: { seq: number; hash: string };
  /** The record at the checkpoint's seq, if present. */
  atSeq?: { seq: number; hash: string };
}

export type CheckpointMatch =
  | { kind: 'match' }
  /** Older than the retention anchor: the record is gone on purpose, nothing to compare. */
  | { kind: 'retained' }
  /** The store's head is older than the checkpoint. */
  | { kind: 'missing'; fromSeq: number; toSeq: number }
  /** The record at the checkpoint's seq is absent or has another hash: the tail was replaced. */
  | { kind: 'replaced'; seq: number; storedHash?: string };

/** Compares one checkpoint with the store (pure). */
export function matchCheckpoint(cp: CheckpointBody, view: StoreView): CheckpointMatch {
  if (cp.seq < view.anchor.seq) return { kind: 'retained' };
  if (cp.seq === view.anchor.seq) return cp.hash === view.anchor.hash ? { kind: 'match' } : { kind: 'replaced', seq: cp.seq, storedHash: view.anchor.hash };
  if (view.head.seq < cp.seq) return { kind: 'missing', fromSeq: view.head.seq + 1, toSeq: cp.seq };
  if (view.atSeq?.seq !== cp.seq) return { kind: 'replaced', seq: cp.seq };
  return view.atSeq.hash === cp.hash ? { kind: 'match' } : { kind: 'replaced', seq: cp.seq, storedHash: view.atSeq.hash };
}
