/** Encodings: base64, base64url, hex, urlquery, json and yaml. */
import YAML from 'yaml';
import { formatNumber, fromJSON, isSet, NumberText, objectEntries, typeName, type Value } from '../value.ts';
import { fail, objectArg, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { BuiltinTypeError } from './errors.ts';
import { T_ANY, T_BOOLEAN, T_OBJECT_ANY, T_STRING, tArray, tObject } from './types.ts';

const S = T_STRING;

// ----- base64 / hex --------------------------------------------------------------------------

const STD = /^[A-Za-z0-9+/]*={0,2}$/;
const URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Go's strict decoding: valid alphabet, correct padding, no stray bits are not checked by Node. */
function decodeBase64(s: string, url: boolean, padded: boolean): string {
  const alphabet = url ? URL : STD;
  const bad = firstInvalid(s, url);
  if (bad >= 0 || !alphabet.test(s)) fail(`illegal base64 data at input byte ${Math.max(bad, 0)}`);
  if (padded && s.length % 4 !== 0) fail(`illegal base64 data at input byte ${s.length - (s.length % 4)}`);
  if (!padded && s.includes('=')) fail(`illegal base64 data at input byte ${s.indexOf('=')}`);
  if (!padded && s.length % 4 === 1) fail(`illegal base64 data at input byte ${s.length - 1}`);
  return Buffer.from(s, url ? 'base64url' : 'base64').toString('utf8');
}

function firstInvalid(s: string, url: boolean): number {
  const ok = url ? /[A-Za-z0-9_\-=]/ : /[A-Za-z0-9+/=]/;
  for (let i = 0; i < s.length; i++) if (!ok.test(s[i]!)) return i;
  const pad = s.indexOf('=');
  if (pad >= 0 && /[^=]/.test(s.slice(pad))) return pad;
  return -1;
}

function hexDecode(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (!/[0-9a-fA-F]/.test(s[i]!)) {
      const cp = s.codePointAt(i)!;
      fail(`encoding/hex: invalid byte: U+${cp.toString(16).toUpperCase().padStart(4, '0')} '${String.fromCodePoint(cp)}'`);
    }
  }
  if (s.length % 2 === 1) fail('encoding/hex: odd length hex string');
  return Buffer.from(s, 'hex').toString('utf8');
}

// ----- urlquery ------------------------------------------------------------------------------

/** Go's url.QueryEscape: unreserved characters stay, space becomes '+', the rest %XX (upper case). */
export function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function queryUnescape(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '%') {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) fail(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
      bytes.push(Number.parseInt(h, 16));
      i += 2;
    } else if (c === '+') bytes.push(0x20);
    else for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

function encodeObject(args: Value[]): string {
  const obj = objectArg(args, 0);
  const parts: string[] = [];
  for (const [k, v] of objectEntries(obj)) {
    if (typeof k !== 'string') throw operandTypeError(1, k, 'string');
    const values = typeof v === 'string' ? [v] : Array.isArray(v) ? v : isSet(v) ? v.values() : undefined;
    if (!values) throw new BuiltinTypeError(`operand 1 must be object[string: any<string, array[string], set[string]>] but got ${typeName(v)} value`);
    for (const x of values) {
      if (typeof x !== 'string') throw new BuiltinTypeError(`operand 1 must be object[string: any<string, array[string], set[string]>] but got ${typeName(x)} element`);
      parts.push(`${queryEscape(k)}=${queryEscape(x)}`);
    }
  }
  return parts.join('&');
}

function decodeObject(s: string): Value {
  const out: Record<string, Value[]> = {};
  for (const part of s.split(/[&]/)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = queryUnescape(eq < 0 ? part : part.slice(0, eq));
    const v = eq < 0 ? '' : queryUnescape(part.slice(eq + 1));
    (Object.hasOwn(out, k) ? out[k]! : (out[k] = [])).push(v);
  }
  return out as Value;
}

// ----- json ----------------------------------------------------------------------------------

/** Go's json.Marshal string escaping (HTML-safe: <, >, & escaped; U+2028/2029 escaped). */
export function goJSONString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's json.Marshal of a value (sets as sorted arrays, object keys sorted). */
export function marshalJSON(v: Value, indent?: { prefix: string; indent: string }, depth = 0): string {
  const nl = indent ? `\n${indent.prefix}${indent.indent.repeat(depth + 1)}` : '';
  const close = indent ? `\n${indent.prefix}${indent.indent.repeat(depth)}` : '';
  const sep = indent ? ': ' : ':';
  switch (typeof v) {
    case 'string':
      return goJSONString(v);
    case 'number':
    case 'bigint':
      return formatNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v === null) return 'null';
  if (v instanceof NumberText) return v.text();
  const items = Array.isArray(v) ? v : isSet(v) ? v.values() : undefined;
  if (items) {
    if (items.length === 0) return '[]';
    return '[' + items.map((x) => nl + marshalJSON(x, indent, depth + 1)).join(',') + close + ']';
  }
  const entries = objectEntries(v as Exclude<Value, null | boolean | number | bigint | string | Value[]> & object as never);
  if (entries.length === 0) return '{}';
  const keyed = entries
    .map(([k, x]) => [typeof k === 'string' ? k : marshalJSON(k), x] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return '{' + keyed.map(([k, x]) => nl + goJSONString(k) + sep + marshalJSON(x, indent, depth + 1)).join(',') + close + '}';
}

function marshalWithOptions(args: Value[]): string {
  const value = args[0]!;
  const opts = objectArg(args, 1);
  let pretty: boolean | undefined;
  let prefix = '';
  let indent = '\t';
  let sawFormatting = false;
  for (const [k, v] of objectEntries(opts)) {
    if (k === 'pretty') {
      if (typeof v !== 'boolean') throw new BuiltinTypeError(`operand 2 must be boolean for key "pretty" but got ${typeName(v)}`);
      pretty = v;
    } else if (k === 'prefix' || k === 'indent') {
      if (typeof v !== 'string') throw new BuiltinTypeError(`operand 2 must be string for key "${k}" but got ${typeName(v)}`);
      if (k === 'prefix') prefix = v;
      else indent = v;
      sawFormatting = true;
    } else {
      throw new BuiltinTypeError(`operand 2 object contained unknown key ${JSON.stringify(k)}`);
    }
  }
  if (pretty === false || (pretty === undefined && !sawFormatting)) return marshalJSON(value);
  return prefix + marshalJSON(value, { prefix, indent });
}

function parseJSON(s: string): Value {
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch (err) {
    fail(err instanceof SyntaxError ? err.message : String(err));
  }
  // Integers beyond 2^53 lose precision in JSON.parse; reparse exactly (rare) through the JSON schema of yaml.
  if (/\d{16,}/.test(s)) {
    const doc = YAML.parseDocument(s, { schema: 'json', intAsBigInt: true });
    if (doc.errors.length === 0) return fromJSON(doc.toJS());
  }
  return fromJSON(parsed);
}

// ----- yaml ----------------------------------------------------------------------------------

function toPlain(v: Value): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof NumberText) return v.value();
  if (Array.isArray(v)) return v.map(toPlain);
  if (isSet(v)) return v.values().map(toPlain);
  const out: Record<string, unknown> = {};
  for (const [k, x] of objectEntries(v)) out[typeof k === 'string' ? k : marshalJSON(k)] = toPlain(x);
  return out;
}

/** Go-yaml style message ("yaml: line 1: did not find expected ',' or ']'") for a parse error. */
function goYamlMessage(err: { message: string; linePos?: [{ line: number; col: number }, ...unknown[]] }): string {
  const line = err.linePos?.[0]?.line ?? 1;
  const first = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const close = /must end with a ([\]}])/.exec(first);
  const text = close ? `did not find expected ',' or '${close[1]}'` : first;
  return `yaml: line ${line}: ${text}`;
}

function parseYAML(s: string): Value {
  const docs = YAML.parseAllDocuments(s, { intAsBigInt: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length === 0) return null;
  const doc = list[0]!;
  if (doc.errors.length) fail(goYamlMessage(doc.errors[0]!));
  return fromJSON(doc.toJS({ maxAliasCount: 100 }));
}

export const ENCODING: readonly BuiltinDefinition[] = [
  builtin('base64.encode', [S], S, (a) => Buffer.from(stringArg(a, 0), 'utf8').toString('base64')),
  builtin('base64.decode', [S], S, (a) => decodeBase64(stringArg(a, 0), false, true)),
  builtin('base64.is_valid', [S], T_BOOLEAN, (a) => {
    const s = stringArg(a, 0);
    return STD.test(s) && s.length % 4 === 0 && firstInvalid(s, false) < 0;
  }),
  builtin('base64url.encode', [S], S, (a) => Buffer.from(stringArg(a, 0), 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_')),
  builtin('base64url.encode_no_pad', [S], S, (a) => Buffer.from(stringArg(a, 0), 'utf8').toString('base64url')),
  builtin('base64url.decode', [S], S, (a) => {
    const s = stringArg(a, 0);
    return decodeBase64(s, true, s.length % 4 === 0);
  }),
  builtin('hex.encode', [S], S, (a) => Buffer.from(stringArg(a, 0), 'utf8').toString('hex')),
  builtin('hex.decode', [S], S, (a) => hexDecode(stringArg(a, 0))),
  builtin('urlquery.encode', [S], S, (a) => queryEscape(stringArg(a, 0))),
  builtin('urlquery.decode', [S], S, (a) => queryUnescape(stringArg(a, 0))),
  builtin('urlquery.encode_object', [tObject(S, T_ANY)], S, encodeObject),
  builtin('urlquery.decode_object', [S], tObject(S, tArray(S)), (a) => decodeObject(stringArg(a, 0))),
  builtin('json.marshal', [T_ANY], S, (a) => marshalJSON(a[0]!)),
  builtin('json.marshal_with_options', [T_ANY, T_OBJECT_ANY], S, marshalWithOptions),
  builtin('json.unmarshal', [S], T_ANY, (a) => parseJSON(stringArg(a, 0))),
  builtin('json.is_valid', [S], T_BOOLEAN, (a) => {
    const s = a[0];
    if (typeof s !== 'string') return false;
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  }),
  builtin('yaml.marshal', [T_ANY], S, (a) => YAML.stringify(toPlain(a[0]!), { sortMapEntries: true, lineWidth: 0, indentSeq: false })),
  builtin('yaml.unmarshal', [S], T_ANY, (a) => parseYAML(stringArg(a, 0))),
  builtin('yaml.is_valid', [S], T_BOOLEAN, (a) => {
    const s = a[0];
    if (typeof s !== 'string') return false;
    try {
      parseYAML(s);
      return true;
    } catch {
      return false;
    }
  }),
];

