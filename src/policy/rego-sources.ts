/**
 * What a `RegoPolicy` compiles, whatever form it takes: modules listed one by one with the data
 * documents next to them (OPA's bundle layout on disk), or an OPA bundle (`.tar.gz` with
 * `.manifest`, modules and data files). Engine-independent: modules as text, data as parsed JSON
 * (integers beyond 2^53 as bigint).
 *
 * Data files follow OPA's bundle rule: a `data.json` / `data.yaml` is loaded at the path of its
 * directory relative to the bundle root (`roles/data.json` → `data.roles`; at the root → `data`).
 * For listed modules the root is the directory of the first module.
 */
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LineCounter, parseDocument } from 'yaml';
import type { ConfigDocument } from '../config/index.ts';
import { DATA_FILE_NAMES, type RegoPolicySpec } from '../config/kinds/rego-policy.ts';
import { PolicyCompileError, type PolicyLocation } from './errors.ts';
import { untar } from './wasm/bundle.ts';


type Json = null | boolean | number | bigint | string | Json[] | { [k: string]: Json };

export interface RegoSources {
  modules: Record<string, string>;
  /** Base `data` document (an object). */
  data: { [k: string]: Json };
  /** Set when the policy comes from an OPA bundle: its name (file) and manifest revision. */
  bundle?: { name: string; revision: string };
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Parses a data file (JSON or YAML), errors located at file:line:column. */
export function parseDataFile(file: string, bytes: Buffer, where: PolicyLocation): Json {
  const lines = new LineCounter();
  const doc = parseDocument(bytes.toString('utf8'), { lineCounter: lines, prettyErrors: false, uniqueKeys: true, intAsBigInt: true });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lines.linePos(err.pos[0]);
    const kind = file.endsWith('.json') ? 'JSON' : 'YAML';
    throw new PolicyCompileError(`data document is not valid ${kind} (column ${col}): ${err.message.split('\n')[0]}`, { ...where, file, line });
  }
  return (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Json;
}

const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Places `value` at `segments` inside `root`, merging objects; a conflict is an error naming the file. */
function mergeAt(root: { [k: string]: Json }, segments: string[], value: Json, file: string, where: PolicyLocation): void {
  let node = root;
  for (const seg of segments.slice(0, value === null || !isObject(value) ? -1 : undefined)) {
    const next = Object.hasOwn(node, seg) ? node[seg] : undefined;
    if (next === undefined) Object.defineProperty(node, seg, { value: {}, enumerable: true, writable: true, configurable: true });
    else if (!isObject(next)) throw new PolicyCompileError(`${file}: conflicts with data at ${segments.join('.')}`, where);
    node = node[seg] as { [k: string]: Json };
  }
  if (!isObject(value)) {
    if (segments.length === 0) throw new PolicyCompileError(`${file}: a data document at the root must be an object`, where);
    Object.defineProperty(node, segments[segments.length - 1]!, { value, enumerable: true, writable: true, configurable: true });
    return;
  }
  for (const [k, v] of Object.entries(value)) Object.defineProperty(node, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Data path of a data file: its directory's segments relative to the root. */
function dataPathOf(relativeFile: string): string[] {
  return relativeFile.split(/[\\/]/).slice(0, -1).filter((s) => s !== '' && s !== '.');
}

/** Reads an OPA bundle: modules, data files merged at their paths, `.manifest` revision. */
export async function readRegoBundle(name: string, archive: Buffer, where: PolicyLocation): Promise<RegoSources> {
  let files: Map<string, Buffer>;
  try {
    files = await untar(gunzipSync(archive, { maxOutputLength: MAX_BUNDLE_BYTES }));
  } catch (err) {
    throw new PolicyCompileError(`${name}: not a readable .tar.gz bundle: ${(err as Error).message}`, where, err);
  }
  const modules: Record<string, string> = {};
  const data: { [k: string]: Json } = {};
  for (const file of [...files.keys()].sort()) {
    const bytes = files.get(file)!;
    if (file.endsWith('.rego')) modules[`${name}/${file}`] = bytes.toString('utf8');
    else if (DATA_FILE_NAMES.has(path.posix.basename(file))) mergeAt(data, dataPathOf(file), parseDataFile(`${name}/${file}`, bytes, where), `${name}/${file}`, where);
  }
  if (files.has('policy.wasm') && Object.keys(modules).length === 0) throw new PolicyCompileError(`${name}: a wasm bundle: use spec.wasmBundle`, where);
  const manifestBytes = files.get('.manifest');
  const manifest = manifestBytes ? parseDataFile(`${name}/.manifest`, manifestBytes, where) : {};
  const revision = isObject(manifest) && typeof manifest.revision === 'string' ? manifest.revision : '';
  checkRoots(name, isObject(manifest) ? manifest.roots : undefined, modules, data, where);
  return { modules, data, bundle: { name, revision } };
}

/** OPA: every package and data path must lie under one of the manifest's roots (when given). */
function checkRoots(name: string, roots: Json | undefined, modules: Record<string, string>, data: { [k: string]: Json }, where: PolicyLocation): void {
  if (!Array.isArray(roots) || roots.length === 0 || roots.includes('')) return;
  const prefixes = roots.map((r) => String(r).replace(/^\/+|\/+$/g, '').split('/'));
  const under = (segments: string[]) => prefixes.some((p) => p.every((s, i) => segments[i] === s) || segments.every((s, i) => p[i] === s));
  for (const [file, text] of Object.entries(modules)) {
    const pkg = /^\s*package\s+([A-Za-z0-9_.]+)/m.exec(text)?.[1];
    if (pkg && !prefixes.some((p) => p.every((s, i) => pkg.split('.')[i] === s))) throw new PolicyCompileError(`${file}: package ${pkg} is outside the bundle roots (${roots.join(', ')})`, where);
  }
  for (const key of Object.keys(data)) if (!under([key])) throw new PolicyCompileError(`${name}: data.${key} is outside the bundle roots (${roots.join(', ')})`, where);
}

/** The modules, data and bundle revision of a RegoPolicy, read from the snapshot. */
export async function regoSources(doc: ConfigDocument, read: (ref: string) => Buffer): Promise<RegoSources> {
  const spec = doc.spec as RegoPolicySpec;
  const where: PolicyLocation = { policy: `${doc.metadata.namespace}/${doc.metadata.name}`, file: doc.source.file, line: doc.source.line };
  if (spec.bundle) return readRegoBundle(spec.bundle, read(spec.bundle), where);
  const modules: Record<string, string> = {};
  for (const m of spec.modules) modules[m] = read(m).toString('utf8');
  const data: { [k: string]: Json } = {};
  const root = path.posix.dirname(spec.modules[0] ?? '.');
  for (const file of [...(spec.data ?? [])].sort()) {
    const shown = path.join(path.dirname(doc.source.file), file);
    const relative = path.posix.relative(root, file);
    if (relative.startsWith('..')) throw new PolicyCompileError(`data file "${file}" must lie under the modules' directory (${root})`, where);
    mergeAt(data, dataPathOf(relative), parseDataFile(shown, read(file), where), shown, where);
  }
  return { modules, data };
}
