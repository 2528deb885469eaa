/** String built-ins. Offsets and lengths count Unicode code points, as Go's rune-based versions do. */
import { formatValue, isObject, isSet, numericValue, objectEntries, toNumber, type Value } from '../value.ts';
import { runeCount } from './aggregates.ts';
import { fail, intArg, numberArg, operandElementError, operandError, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { BuiltinError } from './errors.ts';
import { goSprintf } from './sprintf.ts';
import { T_BOOLEAN, T_NUMBER, T_STRING, T_STRING_SET_OR_ARRAY, tArray, tObject, tUnion } from './types.ts';

const S = T_STRING;

/** Code point index of a UTF-16 index. */
function runeIndex(s: string, utf16Index: number): number {
  return runeCount(s.slice(0, utf16Index));
}

/** Go's strings.Trim cutset semantics: any code point in the cutset. */
function trimSet(s: string, cutset: string, left: boolean, right: boolean): string {
  const set = new Set([...cutset]);
  const chars = [...s];
  let start = 0;
  let end = chars.length;
  if (left) while (start < end && set.has(chars[start]!)) start++;
  if (right) while (end > start && set.has(chars[end - 1]!)) end--;
  return chars.slice(start, end).join('');
}

/** Go's unicode.IsSpace set, used by strings.TrimSpace. */
const GO_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Go's strings.Replace with n = -1 (empty `old` inserts between every code point). */
function replaceAll(s: string, old: string, repl: string): string {
  if (old === '') return [...s].map((c) => repl + c).join('') + repl;
  return s.split(old).join(repl);
}

/** One string or the strings of an array/set, with OPA's any_prefix_match messages. */
function stringOrStrings(args: Value[], i: number): string[] {
  const v = args[i]!;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) || isSet(v)) {
    const items = Array.isArray(v) ? v : v.values();
    for (const x of items) if (typeof x !== 'string') throw operandElementError(i + 1, 'array', x, 'strings');
    return items as string[];
  }
  throw operandTypeError(i + 1, v, 'string', 'set', 'array');
}

function concat(args: Value[]): string {
  const delim = stringArg(args, 0);
  const v = args[1]!;
  const items = Array.isArray(v) ? v : isSet(v) ? v.values() : undefined;
  if (!items) throw operandTypeError(2, v, 'set', 'array');
  for (const x of items) if (typeof x !== 'string') throw operandElementError(2, Array.isArray(v) ? 'array' : 'set', x, 'string');
  return (items as string[]).join(delim);
}

function substring(args: Value[]): string {
  const s = stringArg(args, 0);
  const offset = intArg(args, 1);
  const length = intArg(args, 2);
  if (offset < 0) fail('negative offset');
  const chars = [...s];
  if (offset >= chars.length) return '';
  return (length < 0 ? chars.slice(offset) : chars.slice(offset, offset + length)).join('');
}

function formatInt(args: Value[]): string {
  const n = numberArg(args, 0);
  const base = numberArg(args, 1);
  const b = toNumber(base);
  if (![2, 8, 10, 16].includes(b)) throw operandError(2, 'must be one of {2, 8, 10, 16}');
  // OPA truncates toward zero before formatting.
  const i = typeof n === 'bigint' ? n : BigInt(Math.trunc(n));
  return i.toString(b);
}

function indexOfN(s: string, sub: string): number[] {
  if (sub === '') fail('empty search character');
  const out: number[] = [];
  let from = 0;
  for (;;) {
    const at = s.indexOf(sub, from);
    if (at < 0) return out;
    out.push(runeIndex(s, at));
    from = at + 1;
  }
}

function replaceN(args: Value[]): string {
  const patterns = args[0]!;
  if (!isObject(patterns)) throw operandTypeError(1, patterns, 'object');
  let s = stringArg(args, 1);
  const pairs: Array<[string, string]> = [];
  for (const [k, v] of objectEntries(patterns)) {
    if (typeof k !== 'string') throw operandError(1, 'non-string key found in pattern object');
    if (typeof v !== 'string') throw operandError(1, 'non-string value found in pattern object');
    pairs.push([k, v]);
  }
  // Go's strings.NewReplacer: at each position the first matching pattern in argument order wins.
  let out = '';
  let i = 0;
  outer: while (i < s.length) {
    for (const [old, repl] of pairs) {
      if (old !== '' && s.startsWith(old, i)) {
        out += repl;
        i += old.length;
        continue outer;
      }
    }
    out += s[i];
    i++;
  }
  s = out;
  return s;
}

function split(args: Value[]): Value[] {
  const s = stringArg(args, 0);
  const sep = stringArg(args, 1);
  if (sep === '') return [...s];
  return s.split(sep);
}

function templateString(args: Value[]): string {
  const parts = args[0]!;
  if (!Array.isArray(parts)) throw operandTypeError(1, parts, 'array');
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else if (isSet(p)) {
      if (p.size === 0) out += '<undefined>';
      else if (p.size > 1) throw new BuiltinError('template-strings must not produce multiple outputs');
      else {
        const v = p.values()[0]!;
        out += typeof v === 'string' ? v : formatValue(v);
      }
    } else if (p === null || typeof p === 'boolean' || numericValue(p) !== undefined) out += formatValue(p);
    else throw new BuiltinError(`illegal argument type: ${Array.isArray(p) ? 'array' : 'object'}`);
  }
  return out;
}

function sprintf(args: Value[]): string {
  const format = stringArg(args, 0);
  const values = args[1]!;
  if (!Array.isArray(values)) throw operandTypeError(2, values, 'array');
  return goSprintf(format, values);
}

function countOccurrences(s: string, sub: string): number {
  if (sub === '') return runeCount(s) + 1;
  let n = 0;
  for (let at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length)) n++;
  return n;
}

export const STRINGS: readonly BuiltinDefinition[] = [
  builtin('concat', [S, T_STRING_SET_OR_ARRAY], S, concat),
  builtin('contains', [S, S], T_BOOLEAN, (a) => stringArg(a, 0).includes(stringArg(a, 1))),
  builtin('startswith', [S, S], T_BOOLEAN, (a) => stringArg(a, 0).startsWith(stringArg(a, 1))),
  builtin('endswith', [S, S], T_BOOLEAN, (a) => stringArg(a, 0).endsWith(stringArg(a, 1))),
  builtin('format_int', [T_NUMBER, T_NUMBER], S, formatInt),
  builtin('indexof', [S, S], T_NUMBER, (a) => {
    const s = stringArg(a, 0);
    const sub = stringArg(a, 1);
    if (sub === '') fail('empty search character');
    const at = s.indexOf(sub);
    return at < 0 ? -1 : runeIndex(s, at);
  }),
  builtin('indexof_n', [S, S], tArray(T_NUMBER), (a) => indexOfN(stringArg(a, 0), stringArg(a, 1))),
  builtin('lower', [S], S, (a) => stringArg(a, 0).toLowerCase()),
  builtin('upper', [S], S, (a) => stringArg(a, 0).toUpperCase()),
  builtin('replace', [S, S, S], S, (a) => replaceAll(stringArg(a, 0), stringArg(a, 1), stringArg(a, 2))),
  builtin('strings.replace_n', [tObject(S, S), S], S, replaceN),
  builtin('split', [S, S], tArray(S), split),
  builtin('sprintf', [S, tArray()], S, sprintf),
  builtin('substring', [S, T_NUMBER, T_NUMBER], S, substring),
  builtin('trim', [S, S], S, (a) => trimSet(stringArg(a, 0), stringArg(a, 1), true, true)),
  builtin('trim_left', [S, S], S, (a) => trimSet(stringArg(a, 0), stringArg(a, 1), true, false)),
  builtin('trim_right', [S, S], S, (a) => trimSet(stringArg(a, 0), stringArg(a, 1), false, true)),
  builtin('trim_prefix', [S, S], S, (a) => {
    const s = stringArg(a, 0);
    const p = stringArg(a, 1);
    return s.startsWith(p) ? s.slice(p.length) : s;
  }),
  builtin('trim_suffix', [S, S], S, (a) => {
    const s = stringArg(a, 0);
    const p = stringArg(a, 1);
    return p !== '' && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
  }),
  builtin('trim_space', [S], S, (a) => stringArg(a, 0).replace(GO_SPACE, '')),
  builtin('strings.reverse', [S], S, (a) => [...stringArg(a, 0)].reverse().join('')),
  builtin('strings.count', [S, S], T_NUMBER, (a) => countOccurrences(stringArg(a, 0), stringArg(a, 1))),
  builtin('strings.any_prefix_match', [tUnion(S, T_STRING_SET_OR_ARRAY), tUnion(S, T_STRING_SET_OR_ARRAY)], T_BOOLEAN, (a) => {
    const ss = stringOrStrings(a, 0);
    const ps = stringOrStrings(a, 1);
    return ss.some((s) => ps.some((p) => s.startsWith(p)));
  }),
  builtin('strings.any_suffix_match', [tUnion(S, T_STRING_SET_OR_ARRAY), tUnion(S, T_STRING_SET_OR_ARRAY)], T_BOOLEAN, (a) => {
    const ss = stringOrStrings(a, 0);
    const ps = stringOrStrings(a, 1);
    return ss.some((s) => ps.some((p) => s.endsWith(p)));
  }),
  builtin('internal.template_string', [tArray()], S, templateString),
];
