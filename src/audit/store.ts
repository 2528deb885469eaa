/**
 * The storage interface the audit log writes to and auditors read from. Implemented by SQLite
 * (`sqlite.ts`) and PostgreSQL (`postgres.ts`), both run through the same contract suite
 * (`test/audit/store.contract.ts`). One writer per store appends at a time (SQLite: one process;
 * PostgreSQL: an advisory lock per batch, so several meshward replicas share one chain).
 */
import type { ChainAnchor } from './chain.ts';
import type { AuditFilter, AuditQuery } from './query.ts';
import type { InputBytes } from './record.ts';
import type { AuditRow, PreparedRecord } from './row.ts';

export interface StatsBucket {
  /** Start of the interval, ms since the epoch. */
  start: number;
  decision: string;
  count: number;
}

export interface RetentionResult {
  deleted: number;
  /** The new anchor when records were deleted. */
  anchor?: ChainAnchor;
}

/** A batch being filled: records are added as they are prepared; `write` chains and commits it. */
export interface PendingBatch {
  readonly size: number;
  add(record: PreparedRecord): void;
  /**
   * Adds a record whose body lacks `input`, which the writer thread rebuilds from `input.bytes`
   * and masks with `maskPaths` (only batches of the SQLite writer thread can). False when this
   * batch already holds records for another decoder or other mask paths: seal it and use a new one.
   */
  addWithInputBytes?(record: PreparedRecord, input: InputBytes, maskPaths: readonly string[]): boolean;
  /** Durable when it resolves. After a failure it may be called again (the retry). */
  write(): Promise<{ firstSeq: number; lastSeq: number }>;
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * A batch in the store's own form, when it has one (the SQLite writer thread: records encoded
   * off the V8 heap as they are prepared). Without it, batches are arrays passed to `append`.
   */
  openBatch?(): PendingBatch;
  /**
   * Batches the log may have in flight at once (default 1). More than one only when the store
   * commits them in call order and fails every batch after a failed one until that is seen.
   */
  readonly maxInFlight?: number;
  /** Chains and writes records in one transaction; durable when the promise resolves. */
  append(records: readonly PreparedRecord[]): Promise<{ firstSeq: number; lastSeq: number }>;
  /** One page in `q.order` (default newest first), at most `q.limit` rows. */
  query(q: AuditQuery & { limit: number }): Promise<AuditRow[]>;
  get(decisionId: string): Promise<AuditRow | undefined>;
  /** Counts per decision per `intervalMs` bucket. */
  stats(filter: AuditFilter, intervalMs: number): Promise<StatsBucket[]>;
  /** Rows with seq > afterSeq, ascending (verification). */
  scan(afterSeq: number, limit: number): Promise<AuditRow[]>;
  /** Where the chain starts: the last record retention deleted, or the genesis. */
  anchor(): Promise<ChainAnchor>;
  /** The newest record (or the anchor when the log is empty). */
  head(): Promise<ChainAnchor>;
  /** Deletes every record older than `cutoff` (a prefix of the chain) and moves the anchor. */
  deleteBefore(cutoff: number, now: number): Promise<RetentionResult>;
  close(): Promise<void>;
}

/** The store's own batch form, or an array of prepared records handed to `append`. */
export function openBatch(store: AuditStore): PendingBatch {
  if (store.openBatch) return store.openBatch();
  const records: PreparedRecord[] = [];
  return {
    get size() { return records.length; },
    add: (record) => { records.push(record); },
    write: () => store.append(records),
  };
}

/** Tables: `<prefix>records`, `<prefix>anchors`. Tests use a unique prefix per run. */
export const DEFAULT_TABLE_PREFIX = 'audit_';

export function checkTablePrefix(prefix: string): string {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) throw new Error(`audit table prefix "${prefix}" must match [a-z_][a-z0-9_]*`);
  return prefix;
}

/** Column list shared by both stores, aliased to AuditRow's field names. */
export const ROW_COLUMNS = 'seq, decision_id AS "decisionId", time, decision, status, source_principal AS "sourcePrincipal", request_principal AS "requestPrincipal", destination, method, path, config_version AS "configVersion", policies, body, prev_hash AS "prevHash", hash';

export const INSERT_COLUMNS = 'seq, decision_id, time, decision, status, source_principal, request_principal, destination, method, path, config_version, policies, body, prev_hash, hash';
