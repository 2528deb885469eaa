/**
 * OPA conformance harness: runs the YAML cases of OPA's v1 test suite against compileRego and
 * compares results as OPA's own harness does (rows as a set, values as JSON with sets as sorted
 * arrays, numbers by value; `want_error_code` exact, `want_error` as a substring).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { builtin } from '../../../../src/policy/rego/builtins/definition.ts';
import { T_NULL, T_STRING } from '../../../../src/policy/rego/builtins/types.ts';
import { RegoError } from '../../../../src/policy/rego/errors.ts';
import { compileRego } from '../../../../src/policy/rego/policy.ts';
import { type Value, compare, equals, fromJSON, toJSON } from '../../../../src/policy/rego/value.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
/**
 * OPA's v1 conformance cases: the folder `v1/test/cases/testdata/v1` of the OPA repository (one
 * sub-folder of YAML files per feature). `MESHWARD_CONFORMANCE_DIR` names it; the default is the
 * commit-stamped copy in `../shared/rego-conformance/v1` next to the project.
 */
export const DEFAULT_SUITE_DIR = path.resolve(PROJECT_ROOT, '../shared/rego-conformance/v1');
export const SUITE_DIR = process.env.MESHWARD_CONFORMANCE_DIR ? path.resolve(process.env.MESHWARD_CONFORMANCE_DIR) : DEFAULT_SUITE_DIR;

export interface Case {
  note: string;
  query: string;
  modules?: string[];
  data?: unknown;
  input?: unknown;
  input_term?: string;
  want_result?: Record<string, unknown>[];
  want_error_code?: string;
  want_error?: string;
  sort_bindings?: boolean;
  strict_error?: boolean;
}

export interface CaseOutcome {
  folder: string;
  file: string;
  note: string;
  pass: boolean;
  detail?: string;
}

/** OPA's test-only built-in used by one case. */
const TEST_BUILTINS = new Map([['test.sleep', builtin('test.sleep', [T_STRING], T_NULL, () => null)]]);

export function loadFolder(folder: string): { file: string; cases: Case[] }[] {
  const dir = path.join(SUITE_DIR, folder);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((file) => {
      const doc = YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8'), { intAsBigInt: true }) as { cases?: Case[] };
      return { file, cases: doc.cases ?? [] };
    });
}

export function listFolders(): string[] {
  return fs
    .readdirSync(SUITE_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

function inputOf(c: Case): Value | undefined {
  if (c.input_term !== undefined) {
    const rows = compileRego({}).evaluate(`__input__ = ${c.input_term}`);
    return rows[0]?.bindings.__input__;
  }
  return c.input === undefined ? undefined : fromJSON(c.input);
}

function normalizeRow(row: Record<string, unknown>, sortBindings: boolean): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(row)) {
    let x = fromJSON(toJSON(fromJSON(v)));
    if (sortBindings && Array.isArray(x)) x = [...x].sort(compare);
    out[k] = x;
  }
  return out;
}

function rowsEqual(a: Record<string, Value>, b: Record<string, Value>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => k in b && equals(a[k]!, b[k]!));
}

export function runCase(folder: string, file: string, c: Case): CaseOutcome {
  const base = { folder, file, note: c.note };
  const wantsError = c.want_error_code !== undefined || c.want_error !== undefined;
  try {
    const modules: Record<string, string> = {};
    (c.modules ?? []).forEach((m, i) => {
      modules[`test-${i}.rego`] = m;
    });
    const policy = compileRego(modules, { builtins: TEST_BUILTINS });
    const input = inputOf(c);
    const data = c.data === undefined ? {} : fromJSON(c.data);
    const rows = policy.evaluate(c.query, input, data, { strictBuiltinErrors: c.strict_error === true });
    if (wantsError) return { ...base, pass: false, detail: `expected error ${c.want_error_code ?? ''} ${c.want_error ?? ''}, got ${rows.length} result(s)` };
    const got = rows.map((r) => normalizeRow(toJSONRow(r.bindings), c.sort_bindings === true));
    const want = (c.want_result ?? []).map((r) => normalizeRow(r, c.sort_bindings === true));
    if (got.length !== want.length) return { ...base, pass: false, detail: `want ${show(want)} got ${show(got)}` };
    const used = new Set<number>();
    for (const w of want) {
      const i = got.findIndex((g, j) => !used.has(j) && rowsEqual(g, w));
      if (i < 0) return { ...base, pass: false, detail: `want ${show(want)} got ${show(got)}` };
      used.add(i);
    }
    return { ...base, pass: true };
  } catch (err) {
    if (!(err instanceof RegoError)) return { ...base, pass: false, detail: `internal error: ${(err as Error).stack ?? String(err)}` };
    if (!wantsError) return { ...base, pass: false, detail: `unexpected error: ${err.message}` };
    if (c.want_error_code !== undefined && err.code !== c.want_error_code) {
      return { ...base, pass: false, detail: `want code ${c.want_error_code}, got ${err.code}: ${err.message}` };
    }
    if (c.want_error !== undefined && !err.message.includes(c.want_error)) {
      return { ...base, pass: false, detail: `want message containing ${JSON.stringify(c.want_error)}, got ${err.message}` };
    }
    return { ...base, pass: true };
  }
}

function toJSONRow(b: Record<string, Value>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) out[k] = toJSON(v);
  return out;
}

function show(rows: Record<string, Value>[]): string {
  return JSON.stringify(rows.map(toJSONRow), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

export interface Summary {
  total: number;
  passed: number;
  failed: number;
  percent: number;
  folders: Record<string, { passed: number; total: number }>;
}

export function runSuite(filter?: (folder: string) => boolean): { summary: Summary; outcomes: CaseOutcome[] } {
  const outcomes: CaseOutcome[] = [];
  const folders: Summary['folders'] = {};
  for (const folder of listFolders()) {
    if (filter && !filter(folder)) continue;
    let passed = 0;
    let total = 0;
    for (const { file, cases } of loadFolder(folder)) {
      for (const c of cases) {
        const o = runCase(folder, file, c);
        outcomes.push(o);
        total++;
        if (o.pass) passed++;
      }
    }
    folders[folder] = { passed, total };
  }
  const total = outcomes.length;
  const passed = outcomes.filter((o) => o.pass).length;
  return {
    summary: { total, passed, failed: total - passed, percent: total ? Math.round((passed / total) * 10000) / 100 : 0, folders },
    outcomes,
  };
}
