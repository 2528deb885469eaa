/**
 * `meshward audit query|export|verify`: read the audit store directly (the SQLite file under
 * `--data`, or PostgreSQL with `--database-url`), so they work with the server stopped and need no
 * API token: file-system or database access is the credential. SQLite is opened read-only.
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import {
  type AuditQueryParams, type AuditStore, exportPages, formatExport, openAuditStore, parseQuery, queryDecisions, type StoredDecisionV1, verifyChain,
} from '../../audit/index.ts';
import { AuditInvalidQueryError } from '../../audit/errors.ts';
import { MeshwardError, toExitCode } from '../../lib/errors.ts';
import type { CliCommand, CliIo, CliValues } from '../command.ts';
import { SERVE_DEFAULTS } from '../options.ts';

const STORE_OPTIONS = {
  data: { type: 'string', short: 'd' },
  'database-url': { type: 'string' },
  'table-prefix': { type: 'string' },
} as const;

const FILTER_OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  decision: { type: 'string' },
  principal: { type: 'string' },
  'path-prefix': { type: 'string' },
  policy: { type: 'string' },
  'config-version': { type: 'string' },
  order: { type: 'string' },
  limit: { type: 'string' },
} as const;

function str(values: CliValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

async function openStore(values: CliValues, io: CliIo): Promise<AuditStore> {
  const databaseUrl = str(values, 'database-url') ?? io.env.MESHWARD_DATABASE_URL;
  const dataDir = path.resolve(io.cwd, str(values, 'data') ?? io.env.MESHWARD_DATA_DIR ?? SERVE_DEFAULTS.dataDir);
  const tablePrefix = str(values, 'table-prefix');
  return openAuditStore({ dataDir, readonly: true, ...(databaseUrl ? { databaseUrl } : {}), ...(tablePrefix ? { tablePrefix } : {}) });
}

function queryParams(values: CliValues): AuditQueryParams {
  const pick = (flag: string) => str(values, flag);
  const params: Record<string, string | undefined> = {
    from: pick('from'), to: pick('to'), decision: pick('decision'), principal: pick('principal'), pathPrefix: pick('path-prefix'),
    policy: pick('policy'), configVersion: pick('config-version'), order: pick('order'), cursor: pick('cursor'),
  };
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as AuditQueryParams;
}

function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new AuditInvalidQueryError('--limit', 'must be a positive integer');
  return n;
}

async function withStore<T>(values: CliValues, io: CliIo, fn: (store: AuditStore) => Promise<T>): Promise<T> {
  const store = await openStore(values, io);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function line(d: StoredDecisionV1): string {
  const who = d.requestPrincipal ? `${d.sourcePrincipal ?? '-'} (${d.requestPrincipal})` : (d.sourcePrincipal ?? '-');
  return `${d.seq}\t${new Date(d.time).toISOString()}\t${d.decision}\t${d.status}\t${who} -> ${d.destination ?? '-'}\t${d.method ?? ''} ${d.path ?? ''}\t${d.decisionId}\t${d.reason}\n`;
}

const queryCommand: CliCommand = {
  name: 'audit query',
  summary: 'List decision records (newest first) matching filters, from the local audit store.',
  options: { ...STORE_OPTIONS, ...FILTER_OPTIONS, cursor: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values }, io) {
    const limit = parseLimit(str(values, 'limit')) ?? 50;
    const q = { ...parseQuery(queryParams(values), Date.now()), limit: Math.min(limit, 1000) };
    const page = await withStore(values, io, (store) => queryDecisions(store, q));
    if (values.json) {
      io.stdout(`${JSON.stringify(page)}\n`);
      return 0;
    }
    for (const d of page.records) io.stdout(line(d));
    if (page.nextCursor) io.stderr(`more records: --cursor ${page.nextCursor}\n`);
    return 0;
  },
};

const exportCommand: CliCommand = {
  name: 'audit export',
  summary: 'Export matching decision records (oldest first) as NDJSON or CSV, to stdout or --output (0600).',
  options: { ...STORE_OPTIONS, ...FILTER_OPTIONS, format: { type: 'string', short: 'f' }, output: { type: 'string', short: 'o' } },
  async run({ values }, io) {
    const format = str(values, 'format') ?? 'ndjson';
    if (format !== 'ndjson' && format !== 'csv') throw new AuditInvalidQueryError('--format', 'must be ndjson or csv');
    const limit = parseLimit(str(values, 'limit'));
    const q = { ...parseQuery({ ...queryParams(values), order: str(values, 'order') ?? 'asc' }, Date.now()), ...(limit ? { limit } : {}) };
    const output = str(values, 'output');
    const fd = output ? openSync(path.resolve(io.cwd, output), 'w', 0o600) : undefined;
    // The mode applies only when the file is created: an existing file is made private too.
    if (fd !== undefined) fchmodSync(fd, 0o600);
    let count = 0;
    try {
      await withStore(values, io, async (store) => {
        for await (const chunk of formatExport(countPages(exportPages(store, q), (n) => { count += n; }), format)) {
          if (fd === undefined) io.stdout(chunk);
          else writeSync(fd, chunk);
        }
      });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (output) io.stderr(`exported ${count} record${count === 1 ? '' : 's'} to ${output}\n`);
    return 0;
  },
};

async function* countPages(pages: AsyncIterable<StoredDecisionV1[]>, add: (n: number) => void): AsyncGenerator<StoredDecisionV1[]> {
  for await (const page of pages) {
    add(page.length);
    yield page;
  }
}

const verifyCommand: CliCommand = {
  name: 'audit verify',
  summary: 'Re-compute the audit hash chain; report edited, inserted and deleted records (exit 65 if any).',
  options: { ...STORE_OPTIONS, json: { type: 'boolean' } },
  async run({ values }, io) {
    const report = await withStore(values, io, (store) => verifyChain(store));
    const broken = toExitCode(new MeshwardError('AUDIT_CHAIN_BROKEN', 'audit chain broken'));
    if (values.json) {
      io.stdout(`${JSON.stringify(report)}\n`);
      return report.ok ? 0 : broken;
    }
    const range = report.firstSeq === undefined ? 'no records' : `records ${report.firstSeq}-${report.lastSeq}`;
    if (report.ok) {
      io.stdout(`audit chain ok: ${report.checked} ${range === 'no records' ? 'records' : range} verified from anchor ${report.anchor.seq}; head ${report.headHash}\n`);
      return 0;
    }
    for (const f of report.findings) io.stdout(`${f.kind}\tseq ${f.seq}\t${f.message}\n`);
    io.stderr(`audit chain BROKEN: ${report.findings.length}${report.truncated ? '+' : ''} finding${report.findings.length === 1 ? '' : 's'} in ${report.checked} records\n`);
    return broken;
  },
};

export const commands: CliCommand[] = [queryCommand, exportCommand, verifyCommand];
