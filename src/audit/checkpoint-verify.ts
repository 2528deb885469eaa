/**
 * Verifies an audit store against signed checkpoints: every signature first (one forged or
 * altered checkpoint refuses the whole set), then each checkpoint against the store. A match pins
 * every record up to it (the hash chain, verified separately, links them); failed checkpoints
 * between two matching ones are reported once, as the range after the last match.
 */
import type { KeyObject } from 'node:crypto';
import { type CheckpointMatch, type LocatedCheckpoint, matchCheckpoint, type StoreView, verifyCheckpointSignature } from './checkpoint.ts';
import type { AuditStore } from './store.ts';

export interface CheckpointFinding {
  /** First and last seq of the records missing (or replaced). */
  fromSeq: number;
  toSeq: number;
  /** The checkpoint that proves it. */
  checkpoint: { seq: number; hash: string; time: number; keyId: string; where: string };
  message: string;
}

export interface CheckpointReport {
  ok: boolean;
  /** Signed checkpoints read (all signatures valid). */
  checkpoints: number;
  /** The newest checkpoint per signing key, as compared with the store. */
  newest: { keyId: string; seq: number; time: number; result: CheckpointMatch['kind'] }[];
  findings: CheckpointFinding[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const range = (from: number, to: number) => (from === to ? `record ${from} is` : `records ${from}-${to} are`);

type Store = Pick<AuditStore, 'head' | 'anchor' | 'scan'>;
type Failed = { located: LocatedCheckpoint; match: Exclude<CheckpointMatch, { kind: 'match' | 'retained' }> };

/** One finding for a run of failed checkpoints between two that match: named by the newest of the run. */
function finding(run: Failed[], head: StoreView['head'], lastGoodSeq: number): CheckpointFinding {
  const { located, match } = run.at(-1)!;
  const cp = located.checkpoint;
  const signed = `checkpoint ${located.where} (key ${cp.keyId}, signed ${iso(cp.time)}) covers records up to ${cp.seq} with hash ${cp.hash}`;
  const checkpoint = { seq: cp.seq, hash: cp.hash, time: cp.time, keyId: cp.keyId, where: located.where };
  const replaced = run.find((f) => f.match.kind === 'replaced');
  if (!replaced && match.kind === 'missing') {
    // Records between the newest matching checkpoint and the head may be replacements written after a truncation.
    const unpinned = lastGoodSeq < head.seq ? `; records ${lastGoodSeq + 1}-${head.seq} in the store are not covered by a matching checkpoint` : '';
    return { fromSeq: match.fromSeq, toSeq: cp.seq, checkpoint, message: `${range(match.fromSeq, cp.seq)} missing: ${signed}, but the store's newest record is ${head.seq}${unpinned}` };
  }
  const r = replaced!.match as Extract<CheckpointMatch, { kind: 'replaced' }>;
  const stored = r.storedHash ? `the store's record ${r.seq} has hash ${r.storedHash}` : `the store has no record ${r.seq}`;
  const fromSeq = lastGoodSeq + 1;
  return { fromSeq, toSeq: cp.seq, checkpoint, message: `${range(fromSeq, cp.seq)} missing or replaced (the tail was truncated and rewritten): ${signed}, but ${stored}` };
}

/**
 * Every signature first, then every checkpoint against the store (one indexed lookup each). All
 * keys sign views of one chain, so checkpoints are compared in seq order whoever signed them.
 *
 * @example
 * const report = await verifyCheckpoints(store, readCheckpointFile(file), readTrustedKeys([pubFile]));
 * for (const f of report.findings) console.log(f.fromSeq, f.toSeq, f.message);
 */
export async function verifyCheckpoints(store: Store, checkpoints: readonly LocatedCheckpoint[], trusted: ReadonlyMap<string, KeyObject>): Promise<CheckpointReport> {
  for (const c of checkpoints) verifyCheckpointSignature(c, trusted);
  const [head, anchor] = await Promise.all([store.head(), store.anchor()]);
  // The same checkpoint published twice (checkpoints.ndjson and checkpoint-latest.json) is checked once.
  const unique = new Map<string, LocatedCheckpoint>();
  for (const c of checkpoints) unique.set(`${c.checkpoint.keyId}/${c.checkpoint.seq}/${c.checkpoint.hash}`, c);
  const sorted = [...unique.values()].sort((a, b) => a.checkpoint.seq - b.checkpoint.seq || a.checkpoint.time - b.checkpoint.time);
  const report: CheckpointReport = { ok: true, checkpoints: checkpoints.length, newest: [], findings: [] };
  const newestByKey = new Map<string, { keyId: string; seq: number; time: number; result: CheckpointMatch['kind'] }>();
  let lastGood = anchor.seq;
  let run: Failed[] = [];
  const closeRun = () => {
    if (run.length > 0) report.findings.push(finding(run, head, lastGood));
    run = [];
  };
  for (const located of sorted) {
    const cp = located.checkpoint;
    const match = matchCheckpoint(cp, await rowView(store, head, anchor, cp.seq));
    newestByKey.set(cp.keyId, { keyId: cp.keyId, seq: cp.seq, time: cp.time, result: match.kind });
    if (match.kind === 'match' || match.kind === 'retained') {
      closeRun();
      lastGood = Math.max(lastGood, cp.seq);
    } else {
      run.push({ located, match });
    }
  }
  closeRun();
  report.newest = [...newestByKey.values()];
  report.ok = report.findings.length === 0;
  return report;
}

async function rowView(store: Store, head: StoreView['head'], anchor: StoreView['anchor'], seq: number): Promise<StoreView> {
  if (seq <= anchor.seq || seq > head.seq) return { head, anchor };
  const row = (await store.scan(seq - 1, 1))[0];
  return { head, anchor, ...(row?.seq === seq ? { atSeq: { seq: row.seq, hash: row.hash } } : {}) };
}
