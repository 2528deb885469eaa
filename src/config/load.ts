/**
 * Reads a configuration directory (the shell): every *.yaml / *.yml / *.json file, multi-document,
 * validated, cross-checked, with every problem located at file:line and field path.
 */
import { type Dirent, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import type { ConfigDocument } from './document.ts';
import { ConfigInvalidError, type ConfigIssue } from './errors.ts';
import { type ConfigSource, diskSource } from './file-tree.ts';
import { KINDS } from './kinds/index.ts';
import { DATA_FILE_NAMES } from './kinds/rego-policy.ts';
import type { CheckContext } from './kinds/types.ts';
import { formatPath, type FieldPath } from './path.ts';
import { validateDocument } from './validate.ts';

const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** What a load produces before it is frozen into a snapshot. */
export interface LoadedConfig {
  /** Absolute path of the directory. */
  root: string;
  documents: ConfigDocument[];
  /** Files referenced by documents (Rego modules, wasm bundles), keyed by path relative to root. */
  files: Map<string, Buffer>;
}

/**
 * A folder to walk: a directory, or a symlink to one. The kubelet mounts a ConfigMap or projected
 * volume as symlinks into `..data`, so a folder given with items[].path (`team/authz.yaml`) is a
 * symlink to a directory: skipping it would silently drop its documents.
 */
export function isConfigFolder(parent: string, entry: Dirent): boolean {
  if (entry.name.startsWith('.') || entry.name === 'node_modules') return false;
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  try {
    return statSync(path.join(parent, entry.name)).isDirectory();
  } catch {
    return false; // a dangling link
  }
}

/** The real path, or the path itself when it cannot be resolved (dangling, or removed meanwhile: the read reports it). */
function realPathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Lists config files below dir, sorted, skipping dot-folders and node_modules, following symlinked
 * folders. Each real folder is walked and each real file listed once, so a link back up the tree
 * neither loops nor reads a document twice.
 */
export function listConfigFiles(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const firstVisit = (p: string): boolean => {
    const real = realPathOr(p);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  };
  const walk = (d: string): void => {
    if (!firstVisit(d)) return;
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const full = path.join(d, entry.name);
      if (isConfigFolder(d, entry)) walk(full);
      // data.json / data.yaml are OPA data documents (RegoPolicy spec.data), never configuration.
      else if (CONFIG_EXTENSIONS.has(path.extname(entry.name)) && !DATA_FILE_NAMES.has(entry.name) && firstVisit(full)) out.push(full);
    }
  };
  walk(dir);
  return out;
}

/** Line (1-based) of the node at `fieldPath` in a YAML document, or of its nearest existing ancestor. */
function lineOf(doc: Document, lines: LineCounter, fieldPath: FieldPath, fallback: number): number {
  let node: unknown = doc.contents;
  let best = fallback;
  const offsetLine = (n: unknown): number | undefined => {
    const range = (n as Node | null)?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  best = offsetLine(node) ?? best;
  for (const key of fieldPath) {
    let next: unknown;
    let keyLine: number | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(key));
      if (pair) {
        keyLine = offsetLine(pair.key);
        next = pair.value;
      }
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
    }
    if (next === undefined || next === null) {
      best = keyLine ?? best;
      break;
    }
    // A mapping field is reported on its key's line, a sequence item on its own line.
    best = keyLine ?? offsetLine(next) ?? best;
    node = next;
  }
  return best;
}

/** Displays paths relative to the working directory, as users typed them. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

interface ParsedDocument {
  doc: Document;
  lines: LineCounter;
  file: string;
  startLine: number;
}

function parseFile(file: string, source: ConfigSource, issues: ConfigIssue[]): ParsedDocument[] {
  const text = source.read(file)?.toString('utf8') ?? '';
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const shown = displayPath(file);
  if (!Array.isArray(docs)) return []; // an empty stream
  const out: ParsedDocument[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const { line, col } = lines.linePos(e.pos[0]);
        issues.push({ file: shown, line, column: col, path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}`, category: 'syntax' });
      }
      continue;
    }
    if (doc.contents === null) continue; // empty document between separators
    out.push({ doc, lines, file: shown, startLine: doc.contents.range ? lines.linePos(doc.contents.range[0]).line : 1 });
  }
  return out;
}

/** Says how many "not found" errors were left out, and which files may define what they name. */
function hiddenReferencesNote(syntaxErrors: readonly ConfigIssue[], hidden: number): ConfigIssue {
  const first = syntaxErrors[0]!;
  const files = [...new Set(syntaxErrors.map((i) => i.file))];
  const where = files.length === 1 ? `${files[0]}, which` : `${files.join(', ')}, which`;
  return {
    file: first.file, line: first.line, column: first.column, path: '', category: 'note',
    message: `${hidden} error${hidden === 1 ? '' : 's'} about documents not found ${hidden === 1 ? 'is' : 'are'} not shown: they may be defined in ${where} did not parse`,
  };
}

/**
 * Loads and validates a directory; throws ConfigInvalidError listing every problem. `source`
 * (default: the disk) lets a caller parse bytes it read earlier and compare them afterwards.
 */
export function loadConfigDir(dir: string, source?: ConfigSource): LoadedConfig {
  const root = path.resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new ConfigInvalidError([{ file: dir, line: 0, path: '', message: 'configuration directory not found' }]);
  }
  const issues: ConfigIssue[] = [];
  const documents: ConfigDocument[] = [];
  const parsedByDoc = new Map<ConfigDocument, ParsedDocument>();
  const absoluteFileOf = new Map<string, string>();

  const from = source ?? diskSource(() => listConfigFiles(root));
  for (const file of from.configFiles()) {
    for (const parsed of parseFile(file, from, issues)) {
      absoluteFileOf.set(parsed.file, file);
      const result = validateDocument(parsed.doc.toJS({ maxAliasCount: 100 }), { file: parsed.file, line: parsed.startLine });
      if (!result.ok) {
        for (const i of result.issues) issues.push({ file: parsed.file, line: lineOf(parsed.doc, parsed.lines, i.path, parsed.startLine), path: formatPath(i.path), message: i.message });
        continue;
      }
      documents.push(result.document);
      parsedByDoc.set(result.document, parsed);
    }
  }

  const byKey = new Map<string, ConfigDocument>();
  for (const d of documents) {
    const key = `${d.kind}/${d.metadata.namespace}/${d.metadata.name}`;
    const prev = byKey.get(key);
    if (prev) issues.push({ file: d.source.file, line: d.source.line, path: 'metadata.name', message: `duplicate ${d.kind} "${d.metadata.namespace}/${d.metadata.name}" (first defined at ${prev.source.file}:${prev.source.line})` });
    else byKey.set(key, d);
  }

  const files = new Map<string, Buffer>();
  const resolveRef = (relativeTo: string, ref: string): string => path.resolve(path.dirname(absoluteFileOf.get(relativeTo) ?? path.join(root, relativeTo)), ref);
  const ctx: CheckContext = {
    documents,
    find: (kind, name, namespace) => byKey.get(`${kind}/${namespace}/${name}`),
    fileExists(relativeTo, ref) {
      const content = from.read(resolveRef(relativeTo, ref));
      if (!content) return false;
      files.set(path.relative(root, resolveRef(relativeTo, ref)), content);
      return true;
    },
    readFile: (relativeTo, ref) => from.read(resolveRef(relativeTo, ref)),
  };
  // A file that did not parse may define the documents others name: "not found" would mislead.
  const unparsed = issues.filter((i) => i.category === 'syntax');
  let hidden = 0;
  for (const d of documents) {
    const parsed = parsedByDoc.get(d)!;
    for (const i of KINDS.get(d.kind)!.check?.(d, ctx) ?? []) {
      if (i.unresolvedReference && unparsed.length > 0) {
        hidden++;
        continue;
      }
      issues.push({ file: d.source.file, line: lineOf(parsed.doc, parsed.lines, i.path, d.source.line), path: formatPath(i.path), message: i.message });
    }
  }
  if (hidden > 0) issues.push(hiddenReferencesNote(unparsed, hidden));
  if (issues.length > 0) throw new ConfigInvalidError(issues);
  return { root, documents, files };
}

/** Resolves a file a document references to its key in `LoadedConfig.files` / `ConfigSnapshot.files`. */
export function referencedFileKey(root: string, documentFile: string, ref: string): string {
  const docAbs = path.isAbsolute(documentFile) ? documentFile : path.resolve(process.cwd(), documentFile);
  return path.relative(root, path.resolve(path.dirname(docAbs), ref));
}
