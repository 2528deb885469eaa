/** Immutable, versioned configuration snapshots (pure). */
import { createHash } from 'node:crypto';
import type { ConfigDocument } from './document.ts';
import type { ResolvedMeshSpec } from './kinds/mesh.ts';
import { resolveMesh } from './mesh-defaults.ts';
import { referencedFileKey } from './load.ts';

/**
 * One consistent view of the whole configuration. Every capability reads the same snapshot and
 * stamps `version` on what it produces (audit records, xDS version_info, certificates).
 */
export interface ConfigSnapshot {
  /** Content hash: same documents and referenced files ⇒ same version, whatever the file layout. */
  readonly version: string;
  readonly documents: readonly ConfigDocument[];
  readonly mesh: Readonly<ResolvedMeshSpec>;
  /** Referenced files (Rego modules, bundles) by path relative to `root`. */
  readonly files: ReadonlyMap<string, Buffer>;
  readonly root: string;
  readonly loadedAt: number;
  /** Documents of one kind, in load order. */
  byKind<Spec = unknown>(kind: string): readonly ConfigDocument<Spec>[];
  /** Contents of a file a document references (path relative to the document's file). */
  readFile(doc: ConfigDocument, ref: string): Buffer | undefined;
}

/** JSON with object keys sorted, so the hash does not depend on key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function contentVersion(documents: readonly ConfigDocument[], files: ReadonlyMap<string, Buffer>): string {
  const hash = createHash('sha256');
  const docs = documents
    .map((d) => canonicalJson({ apiVersion: d.apiVersion, kind: d.kind, metadata: d.metadata, spec: d.spec }))
    .sort();
  for (const d of docs) hash.update(d).update('\n');
  for (const name of [...files.keys()].sort()) hash.update(`file:${name}\n`).update(files.get(name)!).update('\n');
  return hash.digest('hex').slice(0, 16);
}

/** Freezes a value and everything below it; already frozen objects are taken as frozen throughout. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** `version`, when given, is the content version computed where the documents were loaded (the load thread). */
export function createSnapshot(input: { root: string; documents: ConfigDocument[]; files: Map<string, Buffer>; version?: string; now?: number }): ConfigSnapshot {
  const documents = deepFreeze([...input.documents]);
  const byKind = new Map<string, ConfigDocument[]>();
  for (const d of documents) {
    const list = byKind.get(d.kind);
    if (list) list.push(d);
    else byKind.set(d.kind, [d]);
  }
  for (const list of byKind.values()) Object.freeze(list);
  const files = new Map(input.files);
  const meshDoc = byKind.get('Mesh')?.[0];
  const snapshot: ConfigSnapshot = {
    version: input.version ?? contentVersion(documents, files),
    documents,
    mesh: deepFreeze(resolveMesh(meshDoc?.spec)),
    files,
    root: input.root,
    loadedAt: input.now ?? Date.now(),
    byKind: <Spec>(kind: string) => (byKind.get(kind) ?? []) as readonly ConfigDocument<Spec>[],
    readFile: (doc, ref) => files.get(referencedFileKey(input.root, doc.source.file, ref)),
  };
  return Object.freeze(snapshot);
}
