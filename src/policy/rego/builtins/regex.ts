/** regex.* built-ins on Go RE2 syntax (translated by re2.ts). */
import type { Value } from '../value.ts';
import { fail, intArg, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { compileRe2, findAll, RegexSyntaxError } from './re2.ts';
import { T_BOOLEAN, T_NUMBER, T_STRING, tArray } from './types.ts';

const S = T_STRING;

function compile(pattern: string): RegExp {
  try {
    return compileRe2(pattern);
  } catch (err) {
    if (err instanceof RegexSyntaxError) fail(`error parsing regexp: ${err.message}`);
    throw err;
  }
}

function matches(pattern: string, value: string): boolean {
  const re = compile(pattern);
  re.lastIndex = 0;
  return re.test(value);
}

/** Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; the longest name wins. */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(/\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g, (_all, tok: string, braced?: string, bare?: string) => {
    if (tok === '$') return '$';
    const name = braced ?? bare!;
    if (/^\d+$/.test(name)) return m[Number(name)] ?? '';
    return m.groups?.[name] ?? '';
  });
}

function replace(s: string, pattern: string, repl: string): string {
  compile(pattern);
  let out = '';
  let last = 0;
  for (const m of findAll(pattern, s, -1)) {
    out += s.slice(last, m.index) + expand(repl, m);
    last = m.index + m[0].length;
  }
  return out + s.slice(last);
}

function split(pattern: string, s: string): string[] {
  compile(pattern);
  if (s === '') return [''];
  const out: string[] = [];
  let beg = 0;
  let end = 0;
  for (const m of findAll(pattern, s, -1)) {
    end = m.index;
    if (m.index + m[0].length !== 0) out.push(s.slice(beg, end));
    beg = m.index + m[0].length;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}

function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** regex.template_match: literal text outside the delimiters, RE2 patterns inside. */
function templateMatch(template: string, value: string, open: string, close: string): boolean {
  // OPA's messages (the end one reports the start delimiter's length, as OPA does).
  if (Buffer.byteLength(open) !== 1) fail(`start delimiter has to be exactly one character long but is ${Buffer.byteLength(open)} long`);
  if (Buffer.byteLength(close) !== 1) fail(`end delimiter has to be exactly one character long but is ${Buffer.byteLength(open)} long`);
  let pattern = '^';
  let i = 0;
  while (i < template.length) {
    const start = template.indexOf(open, i);
    if (start < 0) {
      pattern += quoteMeta(template.slice(i));
      break;
    }
    pattern += quoteMeta(template.slice(i, start));
    // Delimiters nest: find the matching close.
    let depth = 1;
    let j = start + open.length;
    while (j < template.length && depth > 0) {
      if (template.startsWith(open, j)) {
        depth++;
        j += open.length;
      } else if (template.startsWith(close, j)) {
        depth--;
        if (depth === 0) break;
        j += close.length;
      } else j++;
    }
    if (depth !== 0) fail(`unbalanced braces in template: ${JSON.stringify(template)}`);
    pattern += `(?:${template.slice(start + open.length, j)})`;
    i = j + close.length;
  }
  return matches(pattern + '$', value);
}

export const REGEX: readonly BuiltinDefinition[] = [
  builtin('regex.match', [S, S], T_BOOLEAN, (a) => matches(stringArg(a, 0), stringArg(a, 1))),
  builtin('regex.is_valid', [S], T_BOOLEAN, (a) => {
    const p = a[0];
    if (typeof p !== 'string') return false;
    try {
      compileRe2(p);
      return true;
    } catch {
      return false;
    }
  }),
  builtin('regex.find_n', [S, S, T_NUMBER], tArray(S), (a) => {
    const pattern = stringArg(a, 0);
    const s = stringArg(a, 1);
    const n = intArg(a, 2);
    compile(pattern);
    return findAll(pattern, s, n).map((m) => m[0]);
  }),
  builtin('regex.find_all_string_submatch_n', [S, S, T_NUMBER], tArray(tArray(S)), (a) => {
    const pattern = stringArg(a, 0);
    const s = stringArg(a, 1);
    const n = intArg(a, 2);
    compile(pattern);
    return findAll(pattern, s, n).map((m) => [...m].map((g) => g ?? '') as Value[]);
  }),
  builtin('regex.split', [S, S], tArray(S), (a) => split(stringArg(a, 0), stringArg(a, 1))),
  builtin('regex.replace', [S, S, S], S, (a) => replace(stringArg(a, 0), stringArg(a, 1), stringArg(a, 2))),
  builtin('regex.template_match', [S, S, S, S], T_BOOLEAN, (a) =>
    templateMatch(stringArg(a, 0), stringArg(a, 1), stringArg(a, 2), stringArg(a, 3)),
  ),
];
