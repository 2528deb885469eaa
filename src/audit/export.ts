/**
 * Export formats (pure): NDJSON (one StoredDecisionV1 per line) and CSV (the filterable columns
 * plus reason, status, latency and hash). CSV cells that a spreadsheet would run as a formula
 * (`=`, `+`, `-`, `@`, tab, CR at the start) are prefixed with `'`: paths and principals are
 * attacker-controlled and exports get opened in spreadsheets.
 */
import type { StoredDecisionV1 } from './row.ts';

export type ExportFormat = 'ndjson' | 'csv';

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
};

const CSV_COLUMNS: readonly [string, (d: StoredDecisionV1) => string | number | undefined][] = [
  ['seq', (d) => d.seq],
  ['time', (d) => new Date(d.time).toISOString()],
  ['decisionId', (d) => d.decisionId],
  ['decision', (d) => d.decision],
  ['status', (d) => d.status],
  ['reason', (d) => d.reason],
  ['sourcePrincipal', (d) => d.sourcePrincipal],
  ['requestPrincipal', (d) => d.requestPrincipal],
  ['destination', (d) => d.destination],
  ['method', (d) => d.method],
  ['host', (d) => d.host],
  ['path', (d) => d.path],
  ['requestId', (d) => d.requestId],
  ['policies', (d) => d.matchedPolicies.map((p) => `${p.namespace}/${p.name}`).join(' ')],
  ['configVersion', (d) => d.configVersion],
  ['latencyUs', (d) => d.latencyUs],
  ['hash', (d) => d.hash],
];

export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.map(([name]) => name).join(',')}\r\n`;
}

export function csvLine(d: StoredDecisionV1): string {
  return `${CSV_COLUMNS.map(([, get]) => csvCell(get(d))).join(',')}\r\n`;
}

export function ndjsonLine(d: StoredDecisionV1): string {
  return `${JSON.stringify(d)}\n`;
}

/** Formats a stream of decisions as text chunks (one chunk per page keeps writes few). */
export async function* formatExport(pages: AsyncIterable<StoredDecisionV1[]>, format: ExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  const line = format === 'csv' ? csvLine : ndjsonLine;
  for await (const page of pages) {
    if (page.length > 0) yield page.map(line).join('');
  }
}
