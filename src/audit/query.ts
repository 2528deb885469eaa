/**
 * Audit queries (pure): the filter model shared by the auditor API and the CLI, its parsing from
 * strings (query parameters, flags) and opaque keyset cursors.
 */
import { parseDuration } from '../config/index.ts';
import { AuditInvalidQueryError } from './errors.ts';
import { parseRfc3339 } from './time-filter.ts';
import type { DecisionOutcome } from './record.ts';

export const DECISION_OUTCOMES: readonly DecisionOutcome[] = ['allow', 'deny', 'unauthenticated', 'rate_limited', 'bad_request', 'error'];
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** Filters; every field optional, all present ones must match (AND). */
export interface AuditFilter {
  /** Milliseconds since the epoch, inclusive. */
  from?: number;
  /** Milliseconds since the epoch, exclusive. */
  to?: number;
  decisions?: DecisionOutcome[];
  /** Source principal or request principal, exact. */
  principal?: string;
  pathPrefix?: string;
  /** `namespace/name`, or just `name` in any namespace. */
  policy?: string;
  configVersion?: string;
}

export interface AuditQuery extends AuditFilter {
  /** Newest first (`desc`, the default) or oldest first. */
  order?: 'asc' | 'desc';
  limit?: number;
  /** Keyset position: only records strictly after this seq in `order`. */
  afterSeq?: number;
}

/** The string form of a query (HTTP query parameters; CLI flags map onto the same names). */
export interface AuditQueryParams {
  from?: string;
  to?: string;
  decision?: string;
  principal?: string;
  pathPrefix?: string;
  policy?: string;
  configVersion?: string;
  order?: string;
  limit?: string | number;
  cursor?: string;
}

const DURATION_RE = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;

/** Epoch ms, RFC 3339 (strict, see time-filter.ts), or a duration meaning "that long ago" (`24h`). */
export function parseTime(parameter: string, text: string, now: number): number {
  const trimmed = text.trim();
  if (/^\d{1,15}$/.test(trimmed)) return Number(trimmed);
  if (DURATION_RE.test(trimmed)) return now - parseDuration(trimmed);
  const ms = parseRfc3339(trimmed);
  if (ms === undefined) throw new AuditInvalidQueryError(parameter, `${JSON.stringify(text)} is not a time (use an RFC 3339 date-time with offset such as 2026-01-31T09:30:00Z, a date such as 2026-01-31, epoch milliseconds, or a duration ago such as 24h)`);
  return ms;
}

/** PostgreSQL refuses NUL in text (the query failed as 503); no stored value contains one either. */
export function refuseNulByte(parameter: string, value: string): void {
  if (value.includes('\0')) throw new AuditInvalidQueryError(parameter, 'contains a NUL byte');
}

function refuseNul(params: AuditQueryParams): void {
  for (const [name, value] of Object.entries(params)) if (typeof value === 'string') refuseNulByte(name, value);
}

export function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const m = /^seq:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new AuditInvalidQueryError('cursor', 'malformed cursor (pass nextCursor back unchanged)');
  return Number(m[1]);
}

function parseDecisions(text: string): DecisionOutcome[] {
  const values = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const v of values) {
    if (!DECISION_OUTCOMES.includes(v as DecisionOutcome)) throw new AuditInvalidQueryError('decision', `unknown decision "${v}" (one of ${DECISION_OUTCOMES.join(', ')})`);
  }
  return values as DecisionOutcome[];
}

function parseLimit(value: string | number): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw new AuditInvalidQueryError('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  return n;
}

/**
 * Validates string parameters into a query.
 *
 * @example
 * parseQuery({ decision: 'deny,unauthenticated', from: '1h', limit: '50' }, Date.now());
 */
export function parseQuery(params: AuditQueryParams, now: number): AuditQuery {
  refuseNul(params);
  const q: AuditQuery = {};
  if (params.from) q.from = parseTime('from', params.from, now);
  if (params.to) q.to = parseTime('to', params.to, now);
  if (q.from !== undefined && q.to !== undefined && q.from >= q.to) throw new AuditInvalidQueryError('from', 'must be before to');
  if (params.decision) q.decisions = parseDecisions(params.decision);
  if (params.principal) q.principal = params.principal;
  if (params.pathPrefix) q.pathPrefix = params.pathPrefix;
  if (params.policy) q.policy = params.policy;
  if (params.configVersion) q.configVersion = params.configVersion;
  if (params.order) {
    if (params.order !== 'asc' && params.order !== 'desc') throw new AuditInvalidQueryError('order', 'must be asc or desc');
    q.order = params.order;
  }
  if (params.limit !== undefined && params.limit !== '') q.limit = parseLimit(params.limit);
  if (params.cursor) q.afterSeq = decodeCursor(params.cursor);
  return q;
}

/** SQL fragments that differ between SQLite and PostgreSQL. */
export interface SqlDialect {
  /** `substr(col, 1, n) = prefix`-style test; placeholders are `?`. */
  startsWith(column: string): string;
  contains(column: string): string;
}

/** WHERE clause (with `?` placeholders) for a filter and an optional keyset position. */
export function whereClause(q: AuditQuery, dialect: SqlDialect): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (q.from !== undefined) { parts.push('time >= ?'); params.push(q.from); }
  if (q.to !== undefined) { parts.push('time < ?'); params.push(q.to); }
  if (q.decisions && q.decisions.length > 0) {
    parts.push(`decision IN (${q.decisions.map(() => '?').join(', ')})`);
    params.push(...q.decisions);
  }
  if (q.principal !== undefined) { parts.push('(source_principal = ? OR request_principal = ?)'); params.push(q.principal, q.principal); }
  if (q.pathPrefix !== undefined) { parts.push(dialect.startsWith('path')); params.push([...q.pathPrefix].length, q.pathPrefix); }
  if (q.policy !== undefined) {
    parts.push(dialect.contains('policies'));
    params.push(q.policy.includes('/') ? `|${q.policy}|` : `/${q.policy}|`);
  }
  if (q.configVersion !== undefined) { parts.push('config_version = ?'); params.push(q.configVersion); }
  if (q.afterSeq !== undefined) { parts.push(q.order === 'asc' ? 'seq > ?' : 'seq < ?'); params.push(q.afterSeq); }
  return { sql: parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '', params };
}
