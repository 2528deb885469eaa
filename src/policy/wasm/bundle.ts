/**
 * Reads an `opa build -t wasm` bundle: a gzipped tar with `/policy.wasm`, `data.json` files (at the
 * root or under directories naming their data path) and `/.manifest`. Pure apart from decompression;
 * sizes are bounded so a hostile archive cannot exhaust memory.
 */
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { fromJSON, isPlainObject, type PlainObject, setOwn, type Value } from '../rego/value.ts';
import { WasmPolicyError } from './errors.ts';

export interface WasmBundle {
  /** Bytes of policy.wasm. */
  wasm: Uint8Array;
  /** Base data: every data.json merged at its directory's path. */
  data: PlainObject;
  /** Parsed .manifest, or {} when absent. */
  manifest: Readonly<Record<string, unknown>>;
  /** Entrypoints named by the manifest's `wasm` section (the module itself is authoritative). */
  manifestEntrypoints: readonly string[];
}

export interface ReadBundleOptions {
  /** Upper bound of the uncompressed archive (default 64 MiB). */
  maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

function normalizePath(name: string): string {
  return name.replace(/^\.?\/+/, '').replace(/^\.\//, '');
}

export async function untar(tarBytes: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') files.set(normalizePath(header.name), Buffer.concat(chunks));
        next();
      });
      stream.on('error', reject);
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(tarBytes);
  await done;
  return files;
}

function parseJSONFile(name: string, bytes: Buffer): Value {
  try {
    return fromJSON(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    throw new WasmPolicyError('WASM_BUNDLE_INVALID', `bundle file ${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Places `value` at `path` inside `root`, merging objects (later files win on conflicts). */
function mergeAt(root: PlainObject, path: string[], value: Value, file: string): void {
  let node = root;
  for (const seg of path) {
    const next = Object.hasOwn(node, seg) ? node[seg] : undefined;
    if (next === undefined) setOwn(node, seg, {});
    else if (!isPlainObject(next)) throw new WasmPolicyError('WASM_BUNDLE_INVALID', `bundle file ${file} conflicts with data at ${path.join('/')}`);
    node = node[seg] as PlainObject;
  }
  if (!isPlainObject(value)) {
    if (path.length === 0) throw new WasmPolicyError('WASM_BUNDLE_INVALID', `bundle file ${file} must hold a JSON object`);
    const parent = path.slice(0, -1).reduce<PlainObject>((o, s) => o[s] as PlainObject, root);
    setOwn(parent, path[path.length - 1]!, value);
    return;
  }
  for (const [k, v] of Object.entries(value)) setOwn(node, k, v);
}

export async function readBundle(archive: Uint8Array, options: ReadBundleOptions = {}): Promise<WasmBundle> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let tarBytes: Buffer;
  let files: Map<string, Buffer>;
  try {
    tarBytes = gunzipSync(archive, { maxOutputLength: maxBytes });
    files = await untar(tarBytes);
  } catch (err) {
    throw new WasmPolicyError('WASM_BUNDLE_INVALID', `not a readable .tar.gz bundle: ${(err as Error).message}`, { cause: err });
  }
  const wasm = files.get('policy.wasm');
  if (!wasm) {
    throw new WasmPolicyError('WASM_POLICY_MISSING', 'bundle has no /policy.wasm (build it with `opa build -t wasm -e <entrypoint>`)', {
      details: { files: [...files.keys()].sort() },
    });
  }
  const data: PlainObject = {};
  const dataFiles = [...files.keys()].filter((n) => n === 'data.json' || n.endsWith('/data.json')).sort();
  for (const name of dataFiles) {
    const dir = name.split('/').slice(0, -1);
    mergeAt(data, dir, parseJSONFile(name, files.get(name)!), name);
  }
  const manifestBytes = files.get('.manifest');
  const manifestValue = manifestBytes ? parseJSONFile('.manifest', manifestBytes) : {};
  const manifest = (isPlainObject(manifestValue) ? manifestValue : {}) as Record<string, unknown>;
  const wasmSection = Array.isArray(manifest.wasm) ? (manifest.wasm as unknown[]) : [];
  const manifestEntrypoints = wasmSection
    .map((w) => (typeof w === 'object' && w !== null ? (w as Record<string, unknown>).entrypoint : undefined))
    .filter((e): e is string => typeof e === 'string');
  return { wasm: new Uint8Array(wasm), data, manifest, manifestEntrypoints };
}
