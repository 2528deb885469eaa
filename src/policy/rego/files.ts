/**
 * File loading for the CLI and the config loader (the I/O shell around compileRego): `.rego`
 * modules and JSON/YAML data documents from files or directories, in a stable order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { MeshwardError } from '../../lib/errors.ts';
import { type Value, fromJSON, isPlainObject } from './value.ts';

export interface LoadedFiles {
  modules: Record<string, string>;
  data: Value;
}

/** A file found under a path argument, with its directory relative to that argument. */
interface FoundFile {
  file: string;
  dirs: string[];
}

function walk(p: string, out: FoundFile[], dirs: string[] = []): void {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) throw new MeshwardError('NOT_FOUND', `${p}: no such file or directory`);
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(p).sort()) {
      if (e.startsWith('.')) continue;
      const child = path.join(p, e);
      walk(child, out, fs.statSync(child).isDirectory() ? [...dirs, e] : dirs);
    }
  } else out.push({ file: p, dirs });
}

function nest(dirs: readonly string[], v: Value): Value {
  return dirs.reduceRight<Value>((acc, d) => ({ [d]: acc }), v);
}

/** Parses a JSON or YAML data file, keeping big integers exact. */
export function readDataFile(file: string): Value {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return fromJSON(YAML.parse(text, { intAsBigInt: true }));
  } catch (err) {
    throw new MeshwardError('INVALID_ARGUMENT', `${file}: cannot parse data: ${(err as Error).message}`);
  }
}

/** Deep-merges b into a (objects merge, anything else: b wins). */
export function mergeData(a: Value, b: Value): Value {
  if (!isPlainObject(a) || !isPlainObject(b)) return b;
  const out: Record<string, Value> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? mergeData(out[k]!, v) : v;
  return out;
}

/**
 * Loads `.rego` modules and `.json`/`.yaml` data from files and directories. As in OPA bundles, a
 * data file inside a directory lands at that directory's path: `dir/roles/data.json` → `data.roles`.
 */
export function loadPolicyFiles(paths: readonly string[]): LoadedFiles {
  const files: FoundFile[] = [];
  for (const p of paths) walk(p, files);
  const modules: Record<string, string> = {};
  let data: Value = {};
  for (const { file, dirs } of files) {
    if (file.endsWith('.rego')) modules[file] = fs.readFileSync(file, 'utf8');
    else if (/\.(json|ya?ml)$/.test(file)) data = mergeData(data, nest(dirs, readDataFile(file)));
  }
  return { modules, data };
}
