/**
 * The read side over any AuditStore: pages with keyset cursors, streaming export, stats and
 * chain verification. Used by the auditor API and by `meshward audit` alike.
 */
import { ChainVerifier, type VerifyReport } from './chain.ts';
import { AuditInvalidQueryError, AuditRecordNotFoundError } from './errors.ts';
import { type AuditFilter, type AuditQuery, DEFAULT_PAGE_SIZE, encodeCursor } from './query.ts';
import { storedDecision, type StoredDecisionV1 } from './row.ts';
import type { AuditStore } from './store.ts';

export interface DecisionPage {
  records: StoredDecisionV1[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

export async function queryDecisions(store: AuditStore, q: AuditQuery): Promise<DecisionPage> {
  const limit = q.limit ?? DEFAULT_PAGE_SIZE;
  // One extra row tells whether another page exists without a COUNT.
  const rows = await store.query({ ...q, limit: limit + 1 });
  const records = rows.slice(0, limit).map(storedDecision);
  return rows.length > limit ? { records, nextCursor: encodeCursor(records.at(-1)!.seq) } : { records };
}

export async function getDecision(store: AuditStore, decisionId: string): Promise<StoredDecisionV1> {
  const row = await store.get(decisionId);
  if (!row) throw new AuditRecordNotFoundError(decisionId);
  return storedDecision(row);
}

const EXPORT_PAGE = 1000;

/**
 * Lets the event loop run between pages: the SQLite reader is synchronous, and a long export or
 * verification must not stall ext_authz answers on the same thread.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Every matching decision, page by page (keyset, so concurrent appends never shift pages). Oldest first unless `order: desc`. */
export async function* exportPages(store: AuditStore, q: AuditQuery): AsyncGenerator<StoredDecisionV1[]> {
  const order = q.order ?? 'asc';
  let afterSeq = q.afterSeq;
  let remaining = q.limit ?? Number.POSITIVE_INFINITY;
  while (remaining > 0) {
    const limit = Math.min(EXPORT_PAGE, remaining);
    const rows = await store.query({ ...q, order, limit, ...(afterSeq === undefined ? {} : { afterSeq }) });
    if (rows.length === 0) return;
    yield rows.map(storedDecision);
    remaining -= rows.length;
    if (rows.length < limit) return;
    afterSeq = rows.at(-1)!.seq;
    await yieldToEventLoop();
  }
}

export interface StatsInterval {
  /** Interval start (ISO 8601). */
  start: string;
  total: number;
  /** Count per decision outcome; outcomes with no records are absent. */
  counts: Record<string, number>;
}

export interface DecisionStats {
  from: string;
  to: string;
  intervalMs: number;
  total: number;
  intervals: StatsInterval[];
}

export const MAX_STATS_INTERVALS = 10_000;

/** Counts per decision per interval over [from, to). */
export async function decisionStats(store: AuditStore, filter: AuditFilter & { from: number; to: number }, intervalMs: number): Promise<DecisionStats> {
  if (!Number.isInteger(intervalMs) || intervalMs < 1000) throw new AuditInvalidQueryError('interval', 'must be at least 1s');
  if ((filter.to - filter.from) / intervalMs > MAX_STATS_INTERVALS) throw new AuditInvalidQueryError('interval', `too small for the time range (at most ${MAX_STATS_INTERVALS} intervals)`);
  const buckets = await store.stats(filter, intervalMs);
  const byStart = new Map<number, StatsInterval>();
  let total = 0;
  for (const b of buckets) {
    let interval = byStart.get(b.start);
    if (!interval) byStart.set(b.start, (interval = { start: new Date(b.start).toISOString(), total: 0, counts: {} }));
    interval.counts[b.decision] = b.count;
    interval.total += b.count;
    total += b.count;
  }
  return { from: new Date(filter.from).toISOString(), to: new Date(filter.to).toISOString(), intervalMs, total, intervals: [...byStart.values()] };
}

const VERIFY_PAGE = 2000;

/**
 * Re-computes the whole chain from the retention anchor to the head.
 *
 * @example
 * const report = await verifyChain(store);
 * if (!report.ok) for (const f of report.findings) console.log(f.kind, f.seq, f.message);
 */
export async function verifyChain(store: AuditStore, options: { findingLimit?: number } = {}): Promise<VerifyReport> {
  const anchor = await store.anchor();
  const verifier = new ChainVerifier(anchor, { limit: options.findingLimit });
  let after = anchor.seq;
  for (;;) {
    const rows = await store.scan(after, VERIFY_PAGE);
    for (const row of rows) verifier.push(row);
    if (rows.length < VERIFY_PAGE) break;
    after = rows.at(-1)!.seq;
    await yieldToEventLoop();
  }
  return verifier.finish();
}
