/**
 * `meshward audit query|export|verify`: read the audit store directly (the SQLite file under
 * `--data`, or PostgreSQL with `--database-url`), so they work with the server stopped and need no
 * API token: file-system or database access is the credential. SQLite is opened read-only.
 */
import type { KeyObject } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import {
  type AuditQueryParams, type AuditStore, exportPages, formatExport, openAuditStore, parseQuery, queryDecisions, type StoredDecisionV1, verifyChain,
  checkpointDir, checkpointPublicKeyFile, type CheckpointReport, type LocatedCheckpoint, publishedCheckpointFiles, readCheckpointFile, readTrustedKeys, verifyCheckpoints,
} from '../../audit/index.ts';
import { AuditCheckpointInvalidError, AuditInvalidQueryError } from '../../audit/errors.ts';
import { DEFAULT_TABLE_PREFIX } from '../../audit/store.ts';
import { MeshwardError, toExitCode } from '../../lib/errors.ts';
import type { CliCommand, CliIo, CliOption, CliValues } from '../command.ts';
import { pickOptions, SERVE_DEFAULTS } from '../options.ts';

const STORE_OPTIONS = {
  ...pickOptions(['data', 'database-url'], { data: 'Data directory holding the SQLite audit store', 'database-url': 'Read the PostgreSQL audit store instead of the data directory' }),
  'table-prefix': { type: 'string', value: 'PREFIX', description: 'Table-name prefix of the audit store', default: DEFAULT_TABLE_PREFIX },
} satisfies Record<string, CliOption>;

const FILTER_OPTIONS = {
  from: { type: 'string', value: 'TIME', description: 'Records at or after this time (RFC 3339, a date, epoch ms, or a duration ago: 24h)' },
  to: { type: 'string', value: 'TIME', description: 'Records before this time (same forms as --from)' },
  decision: { type: 'string', value: 'ALLOW|DENY', description: 'Only this decision' },
  principal: { type: 'string', value: 'ID', description: 'Source or request principal (SPIFFE ID or JWT subject)' },
  'path-prefix': { type: 'string', value: 'PATH', description: 'Request paths starting with this' },
  policy: { type: 'string', value: 'NAME', description: 'Decided by this policy' },
  'config-version': { type: 'string', value: 'VERSION', description: 'Decided under this configuration version' },
  order: { type: 'string', value: 'asc|desc', description: 'Order by sequence number' },
  limit: { type: 'string', value: 'N', description: 'At most this many records' },
} satisfies Record<string, CliOption>;

function str(values: CliValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function dataDirOf(values: CliValues, io: CliIo): string {
  return path.resolve(io.cwd, str(values, 'data') ?? io.env.MESHWARD_DATA_DIR ?? SERVE_DEFAULTS.dataDir);
}

async function openStore(values: CliValues, io: CliIo): Promise<AuditStore> {
  const databaseUrl = str(values, 'database-url') ?? io.env.MESHWARD_DATABASE_URL;
  const dataDir = dataDirOf(values, io);
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
  options: { ...STORE_OPTIONS, ...FILTER_OPTIONS, cursor: { type: 'string', value: 'CURSOR', description: 'Continue after the page that printed this cursor' }, ...pickOptions(['json']) },
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
  options: { ...STORE_OPTIONS, ...FILTER_OPTIONS, format: { type: 'string', short: 'f', value: 'ndjson|csv', description: 'Output format', default: 'ndjson' }, output: { type: 'string', short: 'o', value: 'FILE', description: 'Write to this file (mode 0600) instead of stdout' } },
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

/** Checkpoints to verify and the keys trusted to sign them: the flags, else what the data dir publishes. */
function checkpointSources(values: CliValues, io: CliIo): { checkpoints: LocatedCheckpoint[]; trusted: Map<string, KeyObject> } | undefined {
  const list = (name: string) => ((values[name] ?? []) as string[]).map((f) => path.resolve(io.cwd, f));
  const dir = checkpointDir(dataDirOf(values, io));
  const explicit = list('checkpoint');
  const files = explicit.length > 0 ? explicit : publishedCheckpointFiles(dir);
  if (files.length === 0) return undefined;
  const checkpoints = files.flatMap((f) => readCheckpointFile(f));
  if (checkpoints.length === 0) throw new AuditCheckpointInvalidError(`${files.join(', ')}: no checkpoint in ${files.length === 1 ? 'this file' : 'these files'}`);
  const keyFiles = list('public-key');
  if (keyFiles.length === 0) {
    const published = checkpointPublicKeyFile(dataDirOf(values, io));
    if (!existsSync(published)) throw new AuditCheckpointInvalidError(`no trusted checkpoint key: pass --public-key FILE (meshward publishes it as ${published})`);
    keyFiles.push(published);
  }
  return { checkpoints, trusted: readTrustedKeys(keyFiles) };
}

function printCheckpoints(report: CheckpointReport, io: CliIo): void {
  for (const n of report.newest) {
    if (n.result === 'match') io.stdout(`checkpoint ok: seq ${n.seq} (key ${n.keyId}, signed ${new Date(n.time).toISOString()}) matches the store\n`);
    if (n.result === 'retained') io.stdout(`checkpoint at seq ${n.seq} (key ${n.keyId}) is older than the retention anchor: nothing to compare\n`);
  }
  for (const f of report.findings) io.stdout(`missing\tseq ${f.fromSeq}-${f.toSeq}\t${f.message}\n`);
}

const verifyCommand: CliCommand = {
  name: 'audit verify',
  summary: 'Re-compute the audit hash chain and compare it with the signed checkpoints (--checkpoint FILE, default: those published in the data dir); exit 65 if a record was edited, inserted or deleted, 66 if records after a checkpoint are missing.',
  options: { ...STORE_OPTIONS, ...pickOptions(['json']), checkpoint: { type: 'string', value: 'FILE', multiple: true, description: 'Signed checkpoint file to compare with (default: those published in <data>)' }, 'public-key': { type: 'string', value: 'FILE', multiple: true, description: 'Public key trusted to sign checkpoints (default: the one published in <data>)' } },
  async run({ values }, io) {
    const sources = checkpointSources(values, io);
    const { report, checkpoints } = await withStore(values, io, async (store) => ({
      report: await verifyChain(store),
      checkpoints: sources ? await verifyCheckpoints(store, sources.checkpoints, sources.trusted) : undefined,
    }));
    const broken = toExitCode(new MeshwardError('AUDIT_CHAIN_BROKEN', 'audit chain broken'));
    const missing = toExitCode(new MeshwardError('AUDIT_RECORDS_MISSING', 'audit records missing'));
    const exit = !report.ok ? broken : checkpoints && !checkpoints.ok ? missing : 0;
    if (values.json) {
      io.stdout(`${JSON.stringify({ ...report, ok: exit === 0, chainOk: report.ok, ...(checkpoints ? { checkpoints } : {}) })}\n`);
      return exit;
    }
    const range = report.firstSeq === undefined ? 'no records' : `records ${report.firstSeq}-${report.lastSeq}`;
    if (report.ok) {
      io.stdout(`audit chain ok: ${report.checked} ${range === 'no records' ? 'records' : range} verified from anchor ${report.anchor.seq}; head ${report.headHash}\n`);
    } else {
      for (const f of report.findings) io.stdout(`${f.kind}\tseq ${f.seq}\t${f.message}\n`);
      io.stderr(`audit chain BROKEN: ${report.findings.length}${report.truncated ? '+' : ''} finding${report.findings.length === 1 ? '' : 's'} in ${report.checked} records\n`);
    }
    if (checkpoints) printCheckpoints(checkpoints, io);
    else io.stderr('note: no signed checkpoints to compare with (--checkpoint FILE): a truncated tail would go unnoticed\n');
    if (checkpoints && !checkpoints.ok) {
      const ranges = checkpoints.findings.map((f) => `${f.fromSeq}-${f.toSeq}`).join(', ');
      io.stderr(`audit records MISSING after a signed checkpoint: seq ${ranges}\n`);
    }
    return exit;
  },
};

export const commands: CliCommand[] = [queryCommand, exportCommand, verifyCommand];
