/**
 * The stored shape of a decision (pure). Each record is kept as its masked JSON text (`body`,
 * exactly what the hash chain covers) plus columns copied out of it for filtering. Verification
 * re-derives the columns from the body, so editing a column alone is detected too.
 */
import type { DecisionOutcome, DecisionRecordV1 } from './record.ts';
import { readStoredDecision } from './stored-decision.ts';

/** A record as the store returns it: the decision plus its place in the chain. */
export interface StoredDecisionV1 extends DecisionRecordV1 {
  /** Position in the log, 1-based and contiguous (retention removes a prefix). */
  seq: number;
  /** SHA-256 (hex) of `prevHash` and the record body. */
  hash: string;
  prevHash: string;
  /** JSON pointers of what masking redacted or removed before storage. */
  masked?: string[];
  /** Present when the stored body could not be read as a record: what was wrong (fields then come from the columns). */
  unreadable?: string;
}

/** Columns derived from a record, used by filters and checked by `verify`. */
export interface RecordColumns {
  decisionId: string;
  time: number;
  decision: DecisionOutcome;
  status: number;
  sourcePrincipal: string | null;
  requestPrincipal: string | null;
  destination: string | null;
  method: string | null;
  path: string | null;
  configVersion: string;
  /** `|namespace/name|namespace/name|`: matched policies, searchable by substring. */
  policies: string;
}

/** A masked record ready to be chained and written. */
export interface PreparedRecord extends RecordColumns {
  body: string;
}

/** A row as read back from a store. */
export interface AuditRow extends PreparedRecord {
  seq: number;
  prevHash: string;
  hash: string;
}

export function columnsOf(record: DecisionRecordV1): RecordColumns {
  return {
    decisionId: text(record.decisionId),
    time: integer(record.time),
    decision: record.decision,
    status: integer(record.status),
    sourcePrincipal: optionalText(record.sourcePrincipal),
    requestPrincipal: optionalText(record.requestPrincipal),
    destination: optionalText(record.destination),
    method: optionalText(record.method),
    path: optionalText(record.path),
    configVersion: text(record.configVersion),
    policies: policyKeys(record),
  };
}

/** `String.prototype.isWellFormed`/`toWellFormed` (ES2024, in Node 20), not yet in the ES2023 lib. */
type WellFormed = string & { isWellFormed(): boolean; toWellFormed(): string };

/**
 * Column text without NUL characters and without lone surrogates: PostgreSQL refuses NUL in text,
 * and one such request path would otherwise block every batch behind it; a lone surrogate has no
 * UTF-8 form, so each store would write its own replacement and `verify` would see the column
 * differ from the body. Both become U+FFFD. (The body keeps the exact value, JSON-escaped.)
 */
function text(value: string): string {
  const v = value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
  return (v as WellFormed).isWellFormed() ? v : (v as WellFormed).toWellFormed();
}

/** BIGINT/INTEGER columns: a fractional or non-finite value from a producer must not poison a batch. */
function integer(value: number): number {
  return Number.isFinite(value) ? Math.trunc(value) : 0;
}

function optionalText(value: string | undefined): string | null {
  return value === undefined ? null : text(value);
}

function policyKeys(record: DecisionRecordV1): string {
  if (!record.matchedPolicies || record.matchedPolicies.length === 0) return '';
  return text(`|${record.matchedPolicies.map((p) => `${p.namespace}/${p.name}`).join('|')}|`);
}

/**
 * Serializes a masked record (or takes its JSON when the masker already made it); `masked` goes
 * into the body so it is covered by the chain.
 */
export function prepareRecord(record: DecisionRecordV1, masked: readonly string[], json: string = JSON.stringify(record)): PreparedRecord {
  // Appending the field to the serialized text avoids copying the record (hot: every record has an authorization header).
  const body = masked.length > 0 ? `${json.slice(0, -1)},"masked":${JSON.stringify(masked)}}` : json;
  // The columns object gains the body in place (no spread copy: this runs for every record).
  const prepared = columnsOf(record) as PreparedRecord;
  prepared.body = body;
  return prepared;
}

/** The row as a decision every reader can answer with, whatever it holds (stored-decision.ts). */
export function storedDecision(row: AuditRow): StoredDecisionV1 {
  return readStoredDecision(row);
}

/** Names of the columns whose stored value differs from the one derived from the body. */
export function columnMismatches(row: AuditRow): string[] {
  let derived: RecordColumns;
  try {
    derived = columnsOf(JSON.parse(row.body) as DecisionRecordV1);
  } catch {
    return ['body'];
  }
  return (Object.keys(derived) as (keyof RecordColumns)[]).filter((k) => derived[k] !== row[k]);
}
