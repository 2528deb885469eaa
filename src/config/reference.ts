/**
 * Generates the configuration reference (Markdown) from the kind schemas, so the README can never
 * drift from what the loader accepts (a test compares them).
 */
import type { TSchema } from '@sinclair/typebox';
import { KINDS } from './kinds/index.ts';

interface Row {
  path: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

type SchemaLike = TSchema & {
  type?: string; properties?: Record<string, SchemaLike>; required?: string[]; items?: SchemaLike; anyOf?: SchemaLike[];
  const?: unknown; patternProperties?: Record<string, SchemaLike>; $ref?: string; $id?: string; minimum?: number; maximum?: number; pattern?: string;
};

function typeOf(s: SchemaLike): string {
  if (s.anyOf) return s.anyOf.map((b) => (b.const !== undefined ? JSON.stringify(b.const) : typeOf(b))).join(' \\| ');
  if (s.$ref) return s.$ref;
  if (s.type === 'array') return `${typeOf(s.items ?? {} as SchemaLike)}[]`;
  if (s.type === 'object' && s.patternProperties) return `map<string, ${typeOf(Object.values(s.patternProperties)[0]!)}>`;
  if (s.type === 'string' && s.pattern === '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$') return 'duration';
  if (s.type === 'integer' && s.minimum !== undefined && s.maximum !== undefined) return `integer ${s.minimum}–${s.maximum}`;
  return s.type ?? 'any';
}

function walk(s: SchemaLike, prefix: string, required: boolean, rows: Row[], seen: Set<string>): void {
  if (s.$id && seen.has(s.$id)) return;
  if (s.$id) seen.add(s.$id);
  if (prefix) rows.push({ path: prefix, type: typeOf(s), required, default: s.default, description: s.description });
  const obj = s.type === 'object' && s.properties ? s : s.type === 'array' && s.items?.type === 'object' && s.items.properties ? s.items : undefined;
  if (!obj?.properties) return;
  const base = s.type === 'array' ? `${prefix}[]` : prefix;
  for (const [name, child] of Object.entries(obj.properties)) {
    walk(child, base ? `${base}.${name}` : name, (obj.required ?? []).includes(name), rows, seen);
  }
}

export function configReference(): string {
  const out: string[] = [];
  for (const kind of KINDS.values()) {
    out.push(`#### \`${kind.kind}\``, '', kind.description, '', '| field | type | required | default |', '|---|---|---|---|');
    const rows: Row[] = [];
    walk(kind.spec as SchemaLike, '', true, rows, new Set());
    for (const r of rows) {
      const def = r.default === undefined ? '' : `\`${JSON.stringify(r.default)}\``;
      out.push(`| \`spec.${r.path}\` | ${r.type} | ${r.required && r.default === undefined ? 'yes' : ''} | ${def} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
