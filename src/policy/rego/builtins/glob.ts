/**
 * glob.match with gobwas/glob semantics (what OPA uses): `*` any run of non-delimiters, `**` any
 * run, `?` one non-delimiter, `[abc]`/`[a-z]`/`[!…]` character lists, `{a,b}` alternatives, `\`
 * escapes. Delimiters `[]` mean the default `["."]`; `null` means none.
 */
import type { Value } from '../value.ts';
import { fail, operandElementError, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_BOOLEAN, T_NULL, T_STRING, tArray, tUnion } from './types.ts';

function escapeClass(ch: string): string {
  return /[\\\]^-]/.test(ch) ? '\\' + ch : ch;
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** Compiles a glob to a RegExp source; throws on unbalanced syntax. */
export function globToRegex(pattern: string, delimiters: readonly string[]): string {
  const chars = [...pattern];
  const notDelim = delimiters.length ? `[^${delimiters.map(escapeClass).join('')}]` : '[\\s\\S]';
  let out = '';
  let braceDepth = 0;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    switch (c) {
      case '\\':
        i++;
        if (i >= chars.length) throw new Error('unexpected end of pattern after escape');
        out += escapeRe(chars[i]!);
        break;
      case '*':
        if (chars[i + 1] === '*') {
          out += '[\\s\\S]*';
          i++;
        } else out += `${notDelim}*`;
        break;
      case '?':
        out += notDelim;
        break;
      case '[': {
        let j = i + 1;
        let cls = '[';
        if (chars[j] === '!') {
          cls += '^';
          j++;
        }
        for (; j < chars.length && chars[j] !== ']'; j++) {
          if (chars[j] === '-' && cls.length > 1 && chars[j + 1] !== ']') cls += '-';
          else cls += escapeClass(chars[j]!);
        }
        if (j >= chars.length) throw new Error('unclosed character list');
        out += cls + ']';
        i = j;
        break;
      }
      case '{':
        braceDepth++;
        out += '(?:';
        break;
      case '}':
        if (braceDepth === 0) {
          out += '\\}';
          break;
        }
        braceDepth--;
        out += ')';
        break;
      case ',':
        out += braceDepth > 0 ? '|' : ',';
        break;
      default:
        out += escapeRe(c);
    }
  }
  if (braceDepth !== 0) throw new Error('unclosed alternatives');
  return `^${out}$`;
}

const cache = new Map<string, Map<string, RegExp>>();

const DEFAULT_DELIMITERS: readonly string[] = ['.'];
const NO_DELIMITERS: readonly string[] = [];

/** Delimiters: an array of strings (each contributes its first character), or null for none. */
function delimitersOf(v: Value): readonly string[] {
  if (v === null) return NO_DELIMITERS;
  if (!Array.isArray(v)) throw operandTypeError(2, v, 'array', 'null');
  if (v.length === 1 && typeof v[0] === 'string' && v[0].length === 1) return v as string[];
  const out: string[] = [];
  for (const d of v) {
    if (typeof d !== 'string') throw operandElementError(2, 'array', d, 'string');
    const first = d.codePointAt(0);
    if (first !== undefined) out.push(String.fromCodePoint(first));
  }
  return out.length === 0 ? DEFAULT_DELIMITERS : out;
}

export function globMatch(pattern: string, delimiters: readonly string[], value: string): boolean {
  const delimKey = delimiters.length === 1 ? delimiters[0]! : delimiters.join('\u0000');
  let byDelims = cache.get(pattern);
  if (!byDelims) {
    if (cache.size > 1000) cache.clear();
    cache.set(pattern, (byDelims = new Map()));
  }
  let re = byDelims.get(delimKey);
  if (!re) {
    try {
      re = new RegExp(globToRegex(pattern, delimiters), 'u');
    } catch (err) {
      fail(`invalid glob pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
    }
    byDelims.set(delimKey, re);
  }
  return re.test(value);
}

export const GLOB: readonly BuiltinDefinition[] = [
  builtin('glob.match', [T_STRING, tUnion(tArray(T_STRING), T_NULL), T_STRING], T_BOOLEAN, (a) =>
    globMatch(stringArg(a, 0), delimitersOf(a[1]!), stringArg(a, 2)),
  ),
  builtin('glob.quote_meta', [T_STRING], T_STRING, (a) => stringArg(a, 0).replace(/[*?\\[\]{}]/g, '\\$&')),
];
