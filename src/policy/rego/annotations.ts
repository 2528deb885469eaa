/**
 * `# METADATA` annotations (OPA's YAML block above a package or rule), normalized as OPA returns
 * them from `rego.metadata.rule()` and `rego.metadata.chain()`.
 */
import YAML from 'yaml';
import type { Annotation } from './ast.ts';
import { RegoError } from './errors.ts';
import { type PlainObject, type Value, fromJSON, isPlainObject } from './value.ts';

const SCOPES = new Set(['rule', 'document', 'package', 'subpackages']);
const KEYS = new Set(['scope', 'title', 'description', 'authors', 'organizations', 'related_resources', 'schemas', 'entrypoint', 'custom', 'compile']);

function author(a: Value): Value {
  if (typeof a !== 'string') return a;
  const m = /^(.*?)\s*<([^>]+)>\s*$/.exec(a.trim());
  if (m) return m[1] ? { name: m[1], email: m[2]! } : { email: m[2]! };
  return a.includes('@') && !a.includes(' ') ? { email: a.trim() } : { name: a.trim() };
}

function resource(r: Value): Value {
  return typeof r === 'string' ? { ref: r } : r;
}

/** Parses and normalizes one block; `defaultScope` is `rule` for rules, `package` for packages. */
export function parseAnnotation(a: Annotation, defaultScope: 'rule' | 'package'): PlainObject {
  let raw: unknown;
  try {
    raw = YAML.parse(a.yaml) ?? {};
  } catch (err) {
    throw new RegoError('rego_parse_error', `invalid METADATA block: ${(err as Error).message.split('\n')[0]}`, a.loc);
  }
  const parsed = fromJSON(raw);
  if (!isPlainObject(parsed)) throw new RegoError('rego_parse_error', 'invalid METADATA block: expected a YAML mapping', a.loc);
  const out: PlainObject = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!KEYS.has(k)) throw new RegoError('rego_parse_error', `invalid METADATA block: unknown key "${k}"`, a.loc);
    if (k === 'authors' && Array.isArray(v)) out[k] = v.map(author);
    else if (k === 'related_resources' && Array.isArray(v)) out[k] = v.map(resource);
    else out[k] = v;
  }
  const scope = typeof out.scope === 'string' ? out.scope : defaultScope;
  if (!SCOPES.has(scope)) throw new RegoError('rego_parse_error', `invalid METADATA block: invalid scope "${scope}"`, a.loc);
  out.scope = scope;
  return out;
}
