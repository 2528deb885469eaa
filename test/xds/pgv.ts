/**
 * A small checker for the protoc-gen-validate rules Envoy enforces when it accepts a resource
 * (`[(validate.rules).message = {required: true}]`, `string = {min_len}`, `repeated = {min_items}`,
 * `duration = {gt {}}` / `{required: true}`, and required oneofs), read from the official .proto
 * files. proto-loader drops those options, so they are parsed from the source text here. It covers
 * the rules that turn a well-typed resource into a NACK; numeric ranges are not checked.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ENVOY_INCLUDE_DIRS, envoyPackageDefinition } from '../../src/lib/protos.ts';

interface FieldRules {
  required?: boolean;
  minLen?: number;
  minItems?: number;
  positiveDuration?: boolean;
}

interface MessageRules {
  fields: Map<string, FieldRules>;
  requiredOneofs: string[][];
  /** Fields inside a oneof: their rules apply only to the member that is set. */
  oneofMembers: Set<string>;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

function rulesOf(options: string): FieldRules {
  const r: FieldRules = {};
  if (/\.message\s*=\s*\{[^}]*required:\s*true/.test(options) || /\.duration\s*=\s*\{[^}]*required:\s*true/.test(options)) r.required = true;
  const minLen = /\.string\s*=\s*\{[^}]*min_(?:len|bytes):\s*(\d+)/.exec(options);
  if (minLen) r.minLen = Number(minLen[1]);
  const minItems = /\.repeated\s*=\s*\{[^}]*min_items:\s*(\d+)/.exec(options);
  if (minItems) r.minItems = Number(minItems[1]);
  if (/\.duration\s*=\s*\{[^}]*gt\s*:?\s*\{\s*\}/.test(options)) r.positiveDuration = true;
  return r;
}

/** Parses one .proto file's messages (nested included) into rules by full message name. */
function parseFile(text: string, out: Map<string, MessageRules>): void {
  const src = stripComments(text);
  const pkg = /\bpackage\s+([\w.]+)\s*;/.exec(src)?.[1] ?? '';
  const scopes: { kind: 'message' | 'oneof' | 'other'; name: string; fields?: string[]; required?: boolean }[] = [];
  const messageName = () => [pkg, ...scopes.filter((s) => s.kind === 'message').map((s) => s.name)].filter(Boolean).join('.');
  let stmt = '';
  let bracket = 0;
  for (const ch of src) {
    if (ch === '[') bracket++;
    if (ch === ']') bracket--;
    if (bracket > 0) {
      stmt += ch;
      continue;
    }
    if (ch === '{') {
      const head = stmt.trim();
      const m = /^(message|oneof|enum|service|extend)\s+(\w+)/.exec(head.split(/\s*;\s*/).pop() ?? head);
      if (m?.[1] === 'message') {
        scopes.push({ kind: 'message', name: m[2]! });
        if (!out.has(messageName())) out.set(messageName(), { fields: new Map(), requiredOneofs: [], oneofMembers: new Set() });
      } else if (m?.[1] === 'oneof') scopes.push({ kind: 'oneof', name: m[2]!, fields: [] });
      else if (m) scopes.push({ kind: 'other', name: m[2]! });
      else {
        // an option value's braces at statement level (e.g. `option (x) = {...};`): keep as text
        stmt += ch;
        bracket++;
        continue;
      }
      stmt = '';
      continue;
    }
    if (ch === '}') {
      const s = scopes.pop();
      if (s?.kind === 'oneof' && s.required) out.get(messageName())?.requiredOneofs.push(s.fields!);
      stmt = '';
      continue;
    }
    if (ch === ';') {
      const line = stmt.trim().replace(/\s+/g, ' ');
      stmt = '';
      const top = scopes.at(-1);
      if (!top || top.kind === 'other') continue;
      if (top.kind === 'oneof' && /^option \(validate\.required\) = true$/.test(line)) {
        top.required = true;
        continue;
      }
      const f = /^(?:repeated |optional )?(?:map<[^>]+>|[\w.]+) (\w+) = \d+ ?(\[.*\])?$/.exec(line);
      if (!f) continue;
      if (top.kind === 'oneof') {
        top.fields!.push(f[1]!);
        out.get(messageName())?.oneofMembers.add(f[1]!);
      }
      const rules = f[2] ? rulesOf(f[2]) : {};
      if (Object.keys(rules).length) out.get(messageName())?.fields.set(f[1]!, rules);
      continue;
    }
    stmt += ch;
  }
}

let index: Map<string, MessageRules> | undefined;

function rulesIndex(): Map<string, MessageRules> {
  if (index) return index;
  index = new Map();
  const root = ENVOY_INCLUDE_DIRS[0]!;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.proto')) parseFile(readFileSync(full, 'utf8'), index!);
    }
  };
  for (const sub of ['envoy/config', 'envoy/extensions/filters', 'envoy/extensions/transport_sockets/tls', 'envoy/extensions/upstreams/http', 'envoy/type']) walk(path.join(root, sub));
  return index;
}

interface FieldDescriptor {
  name: string;
  type: string;
  typeName: string;
  label: string;
}

function descriptorOf(fullName: string): FieldDescriptor[] | undefined {
  const def = envoyPackageDefinition()[fullName] as { type?: { field?: FieldDescriptor[] } } | undefined;
  return def?.type?.field;
}

/** Resolves a descriptor's (relative) type name from the scope of `from`, as protoc does. */
function resolveType(typeName: string, from: string): string | undefined {
  if (typeName.startsWith('.')) return typeName.slice(1);
  const parts = from.split('.');
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), typeName].join('.');
    if (envoyPackageDefinition()[candidate]) return candidate;
  }
  return undefined;
}

const present = (v: unknown) => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);

/** PGV violations of `value` as message `typeName`, with field paths. */
export function pgvViolations(value: Record<string, unknown>, typeName: string, at = ''): string[] {
  const out: string[] = [];
  const rules = rulesIndex().get(typeName);
  for (const [field, r] of rules?.fields ?? []) {
    const v = value[field];
    if (rules!.oneofMembers.has(field) && !present(v)) continue;
    const where = `${at}.${field} (${typeName})`;
    if (r.required && !present(v)) out.push(`${where}: required`);
    if (r.minLen !== undefined && (typeof v !== 'string' || v.length < r.minLen) && !(Buffer.isBuffer(v) && v.length >= r.minLen)) out.push(`${where}: min_len ${r.minLen}`);
    if (r.minItems !== undefined && (!Array.isArray(v) || v.length < r.minItems)) out.push(`${where}: min_items ${r.minItems}`);
    // Rules on a message-typed field apply only when it is set (PGV semantics); `required` makes it mandatory.
    if (r.positiveDuration && v !== undefined && v !== null && !(Number((v as { seconds?: string }).seconds ?? 0) > 0 || Number((v as { nanos?: number }).nanos ?? 0) > 0)) out.push(`${where}: duration must be > 0`);
  }
  for (const oneof of rules?.requiredOneofs ?? []) {
    if (!oneof.some((f) => present(value[f]))) out.push(`${at} (${typeName}): one of ${oneof.join(', ')} is required`);
  }
  const fields = descriptorOf(typeName) ?? [];
  for (const [key, v] of Object.entries(value)) {
    if (key === '@type' || v === null || typeof v !== 'object' || Buffer.isBuffer(v)) continue;
    const fd = fields.find((f) => f.name === key);
    if (fd?.type !== 'TYPE_MESSAGE') continue;
    const child = resolveType(fd.typeName, typeName) ?? (fd.typeName.endsWith('Entry') ? 'MapEntry' : undefined);
    if (!child) continue;
    const check = (item: unknown, where: string): void => {
      if (!item || typeof item !== 'object') return;
      const obj = item as Record<string, unknown>;
      const target = child === 'google.protobuf.Any' ? String(obj['@type'] ?? '').replace(/^type\.googleapis\.com\//, '') : child;
      if (target && envoyPackageDefinition()[target]) out.push(...pgvViolations(obj, target, where));
    };
    if (Array.isArray(v)) v.forEach((item, i) => check(item, `${at}.${key}[${i}]`));
    else if (child.endsWith('Entry') && fd.label === 'LABEL_REPEATED') {
      // map<string, Message>: check each value as the entry's value type
      // proto-loader does not list map entry types; a map whose values carry "@type" holds Anys.
      const valueField = descriptorOf(child)?.find((f) => f.name === 'value');
      const valueType = valueField?.type === 'TYPE_MESSAGE' ? resolveType(valueField.typeName, child) : 'google.protobuf.Any';
      for (const [k, item] of Object.entries(v)) {
        if (!valueType || !item || typeof item !== 'object') continue;
        const obj = item as Record<string, unknown>;
        const target = valueType === 'google.protobuf.Any' ? String(obj['@type'] ?? '').replace(/^type\.googleapis\.com\//, '') : valueType;
        if (target && envoyPackageDefinition()[target]) out.push(...pgvViolations(obj, target, `${at}.${key}[${k}]`));
      }
    } else check(v, `${at}.${key}`);
  }
  return out;
}

/** For the checker's own test: how many messages carry rules. */
export function pgvRuleCount(): number {
  return [...rulesIndex().values()].filter((m) => m.fields.size > 0 || m.requiredOneofs.length > 0).length;
}
