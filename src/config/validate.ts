/**
 * Validates one parsed YAML document against the envelope and its kind's schema (pure).
 * Errors come back with field paths; the loader turns them into file:line.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { API_VERSION, DEFAULT_NAMESPACE, Metadata, type ConfigDocument, type DocumentSource } from './document.ts';
import { KINDS } from './kinds/index.ts';
import { type FieldPath, fromJsonPointer } from './path.ts';
import { closestName } from './suggest.ts';

export interface PathIssue {
  path: FieldPath;
  message: string;
}

const Envelope = Type.Object({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.String(),
  metadata: Metadata,
  spec: Type.Unknown(),
}, { additionalProperties: false });

const envelopeCheck = TypeCompiler.Compile(Envelope);
const specChecks = new Map<string, TypeCheck<TSchema>>();

function specCheck(kind: string, schema: TSchema): TypeCheck<TSchema> {
  let check = specChecks.get(kind);
  if (!check) specChecks.set(kind, (check = TypeCompiler.Compile(schema)));
  return check;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** "unknown field", with the closest field the object does have (`acton` → `action`). */
function unknownField(path: FieldPath, objectSchema: TSchema): string {
  const name = path.at(-1);
  const known = Object.keys((objectSchema as { properties?: Record<string, unknown> }).properties ?? {});
  const suggestion = typeof name === 'string' ? closestName(name, known) : undefined;
  return suggestion ? `unknown field (did you mean "${suggestion}"?)` : 'unknown field';
}

function collect(check: TypeCheck<TSchema>, value: unknown, prefix: FieldPath): PathIssue[] {
  const issues: PathIssue[] = [];
  const seen = new Set<string>();
  for (const e of check.Errors(value)) {
    // One message per field: TypeBox reports "required" then "expected boolean" for the same miss.
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    const path = fromJsonPointer(e.path);
    const message = e.message === 'Unexpected property' ? unknownField(path, e.schema) : lowerFirst(e.message);
    issues.push({ path: [...prefix, ...path], message });
  }
  return issues;
}

export type ValidateResult = { ok: true; document: ConfigDocument } | { ok: false; issues: PathIssue[] };

/** Validates and applies defaults; never mutates `raw`. */
export function validateDocument(raw: unknown, source: DocumentSource): ValidateResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, issues: [{ path: [], message: 'a document must be a mapping with apiVersion, kind, metadata and spec' }] };
  }
  const envelopeIssues = collect(envelopeCheck, raw, []);
  const obj = raw as Record<string, unknown>;
  const kind = typeof obj.kind === 'string' ? KINDS.get(obj.kind) : undefined;
  if (typeof obj.kind === 'string' && !kind) {
    envelopeIssues.push({ path: ['kind'], message: `unknown kind "${obj.kind}" (known: ${[...KINDS.keys()].join(', ')})` });
  }
  if (!('spec' in obj)) envelopeIssues.push({ path: [], message: 'expected required property spec' });
  if (envelopeIssues.length > 0 || !kind) return { ok: false, issues: envelopeIssues };

  // Defaults first, so fields that have one are never reported missing.
  const withDefaults = Value.Default(kind.spec, structuredClone(obj.spec ?? {}));
  const specIssues = collect(specCheck(kind.kind, kind.spec), withDefaults, ['spec']);
  if (specIssues.length > 0) return { ok: false, issues: specIssues };
  const metadata = obj.metadata as Metadata;
  return {
    ok: true,
    document: {
      apiVersion: API_VERSION,
      kind: kind.kind,
      metadata: { ...metadata, namespace: metadata.namespace ?? DEFAULT_NAMESPACE },
      spec: withDefaults,
      source,
    },
  };
}
