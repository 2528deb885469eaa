/**
 * regex.globs_match: do two patterns match at least one common string? Patterns use the subset
 * OPA's gintersect supports: literals, `.`, bracket classes (`[a-z]`, `[^...]`), `\` escapes, and the
 * quantifiers `*`, `+`, `?` on single tokens. Decided by a search over token positions.
 */
import { fail, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_BOOLEAN, T_STRING } from './types.ts';

type CharSet = { any: true } | { any: false; negated: boolean; ranges: Array<[number, number]> };

interface Token {
  set: CharSet;
  q: '' | '*' | '?';
}

function invalid(pattern: string, pos: number, what: string): never {
  fail(`input:${pattern}, pos:${pos}, ${what}: the input provided is invalid`);
}

function tokenize(pattern: string): Token[] {
  const chars = [...pattern];
  const out: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    let set: CharSet;
    if (c === '.') set = { any: true };
    else if (c === '\\') {
      i++;
      if (i >= chars.length) invalid(pattern, i, 'escape at end of input');
      const cp = chars[i]!.codePointAt(0)!;
      set = { any: false, negated: false, ranges: [[cp, cp]] };
    } else if (c === '[') {
      const start = i;
      const ranges: Array<[number, number]> = [];
      let negated = false;
      i++;
      if (chars[i] === '^') {
        negated = true;
        i++;
      }
      while (i < chars.length && chars[i] !== ']') {
        let lo = chars[i]!;
        if (lo === '\\') lo = chars[++i] ?? invalid(pattern, i, 'escape at end of input');
        let hi = lo;
        if (chars[i + 1] === '-' && chars[i + 2] !== undefined && chars[i + 2] !== ']') {
          hi = chars[i + 2]!;
          if (hi === '\\') hi = chars[i + 3] ?? invalid(pattern, i + 3, 'escape at end of input');
          i += hi === chars[i + 2] ? 2 : 3;
        }
        ranges.push([lo.codePointAt(0)!, hi.codePointAt(0)!]);
        i++;
      }
      if (i >= chars.length) invalid(pattern, start + 1, "set-open '[' with no closing ']'");
      set = { any: false, negated, ranges };
    } else if (c === ']') invalid(pattern, i + 1, "set-close ']' with no preceding '['");
    else if (c === '*' || c === '+' || c === '?') invalid(pattern, i + 1, `quantifier '${c}' with nothing to repeat`);
    else {
      const cp = c.codePointAt(0)!;
      set = { any: false, negated: false, ranges: [[cp, cp]] };
    }
    const q = chars[i + 1];
    if (q === '*' || q === '?') {
      out.push({ set, q });
      i++;
    } else if (q === '+') {
      out.push({ set, q: '' }, { set, q: '*' });
      i++;
    } else out.push({ set, q: '' });
  }
  return out;
}

function inSet(cp: number, s: CharSet): boolean {
  if (s.any) return true;
  const hit = s.ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
  return s.negated ? !hit : hit;
}

/** Whether some character is in both sets (probing range ends and their neighbours suffices). */
function intersects(a: CharSet, b: CharSet): boolean {
  if (a.any || b.any) return true;
  if (a.negated && b.negated) return true;
  const candidates = (s: CharSet) => (s.any ? [] : s.ranges.flatMap(([lo, hi]) => [lo, hi, lo - 1, hi + 1]));
  const probes = [...candidates(a), ...candidates(b), 0x20, 0x61, 0x10ffff].filter((x) => x >= 0);
  return probes.some((cp) => inSet(cp, a) && inSet(cp, b));
}

export function globsIntersect(p1: string, p2: string): boolean {
  const a = tokenize(p1);
  const b = tokenize(p2);
  const memo = new Map<number, boolean>();
  const search = (i: number, j: number): boolean => {
    const key = i * (b.length + 1) + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    memo.set(key, false);
    let ok = i === a.length && j === b.length;
    if (!ok && i < a.length && a[i]!.q !== '' && search(i + 1, j)) ok = true;
    if (!ok && j < b.length && b[j]!.q !== '' && search(i, j + 1)) ok = true;
    if (!ok && i < a.length && j < b.length && intersects(a[i]!.set, b[j]!.set)) {
      const ni = a[i]!.q === '*' ? i : i + 1;
      const nj = b[j]!.q === '*' ? j : j + 1;
      if ((ni !== i || nj !== j) && search(ni, nj)) ok = true;
    }
    memo.set(key, ok);
    return ok;
  };
  return search(0, 0);
}

export const GLOBS: readonly BuiltinDefinition[] = [
  builtin('regex.globs_match', [T_STRING, T_STRING], T_BOOLEAN, (a) => globsIntersect(stringArg(a, 0), stringArg(a, 1))),
];
