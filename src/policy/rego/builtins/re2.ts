/**
 * Go RE2 syntax → JavaScript RegExp (with the `u` flag). The two differ in ways that change
 * results, so patterns are translated, and what RE2 rejects (lookaround, backreferences) or what
 * JavaScript cannot express here (mid-pattern flag groups) is rejected with a Go-like message.
 * - `.` does not match `\n` only (JS also excludes `\r`, U+2028, U+2029); `\s` is `[\t\n\f\r ]`.
 * - `(?i)`/`(?s)`/`(?m)` at the start become flags; `(?P<name>` becomes `(?<name>`.
 * - `\A`, `\z`, `\Q…\E`, POSIX classes `[[:alpha:]]`, `\pL`/`\p{Greek}`, octal escapes.
 * - Literal `{`, `}`, `]` and escaped punctuation that Go accepts are escaped for the `u` flag.
 * Go's leftmost-first semantics match JavaScript's backtracking for the same alternation order.
 */
export class RegexSyntaxError extends Error {}

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7f',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const JS_SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);

function hexEscape(ch: string): string {
  return `\\u{${ch.codePointAt(0)!.toString(16)}}`;
}

function literal(ch: string): string {
  return JS_SYNTAX.has(ch) || ch === '-' ? hexEscape(ch) : ch;
}

function unicodeClass(name: string, negated: boolean): string {
  const n = name.startsWith('^') ? name.slice(1) : name;
  const neg = negated !== name.startsWith('^');
  const prop = n === 'Any' ? null : n.length <= 2 ? n : `Script=${n}`;
  if (prop === null) return neg ? '[^\\s\\S]' : '[\\s\\S]';
  return `\\${neg ? 'P' : 'p'}{${prop}}`;
}

interface Translated {
  source: string;
  flags: string;
}

/** Translates an RE2 pattern; throws RegexSyntaxError for what RE2 rejects or cannot be mapped. */
export function translateRe2(pattern: string): Translated {
  let flags = 'u';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(pattern);
  if (lead) {
    if (lead[1]!.includes('U')) throw new RegexSyntaxError('ungreedy flag (?U) is not supported');
    for (const f of lead[1]!) if (!flags.includes(f)) flags += f;
    i = lead[0].length;
  }
  const dotAll = flags.includes('s');
  const multiline = flags.includes('m');
  let out = '';
  let depth = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      const [text, len] = translateEscape(pattern, i, false, multiline);
      out += text;
      i += len;
    } else if (ch === '[') {
      const [text, len] = translateClass(pattern, i);
      out += text;
      i += len;
    } else if (ch === '(') {
      if (pattern.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
      } else if (pattern.startsWith('(?<', i) && !pattern.startsWith('(?<=', i) && !pattern.startsWith('(?<!', i)) {
        out += '(?<';
        i += 3;
      } else if (pattern.startsWith('(?:', i)) {
        out += '(?:';
        i += 3;
      } else if (pattern[i + 1] === '?') {
        throw new RegexSyntaxError(`invalid or unsupported Perl syntax: \`${pattern.slice(i, i + 3)}\``);
      } else {
        out += '(';
        i++;
      }
      depth++;
    } else if (ch === ')') {
      if (depth === 0) throw new RegexSyntaxError(`unexpected ): \`${pattern}\``);
      depth--;
      out += ')';
      i++;
    } else if (ch === '.') {
      out += dotAll ? '[\\s\\S]' : '[^\\n]';
      i++;
    } else if (ch === '{') {
      const rep = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (rep) {
        if (Number(rep[1]) > 1000 || (rep[3] && Number(rep[3]) > 1000)) throw new RegexSyntaxError(`invalid repeat count: \`${rep[0]}\``);
        out += rep[0];
        i += rep[0].length;
      } else {
        out += '\\{';
        i++;
      }
    } else if (ch === '}' || ch === ']') {
      out += '\\' + ch;
      i++;
    } else {
      out += ch;
      i++;
    }
  }
  if (depth !== 0) throw new RegexSyntaxError(`missing closing ): \`${pattern}\``);
  return { source: out, flags };
}

/** One escape sequence at `i`; returns the JS text and the number of pattern chars consumed. */
function translateEscape(p: string, i: number, inClass: boolean, multiline: boolean): [string, number] {
  const c = p[i + 1];
  if (c === undefined) throw new RegexSyntaxError('trailing backslash at end of expression');
  switch (c) {
    case 'A':
      if (inClass) break;
      return [multiline ? '(?<![\\s\\S])' : '^', 2];
    case 'z':
      if (inClass) break;
      return [multiline ? '(?![\\s\\S])' : '$', 2];
    case 's':
      return [inClass ? '\\t\\n\\f\\r ' : '[\\t\\n\\f\\r ]', 2];
    case 'S':
      return [inClass ? '\\S' : '[^\\t\\n\\f\\r ]', 2];
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 'n':
    case 't':
    case 'r':
    case 'f':
    case 'v':
      return ['\\' + c, 2];
    case 'a':
      return ['\\x07', 2];
    case 'b':
    case 'B':
      if (inClass) break;
      return ['\\' + c, 2];
    case 'x': {
      const braced = /^\\x\{([0-9a-fA-F]+)\}/.exec(p.slice(i));
      if (braced) return [`\\u{${braced[1]}}`, braced[0].length];
      const two = /^\\x([0-9a-fA-F]{2})/.exec(p.slice(i));
      if (two) return [`\\x${two[1]}`, 4];
      break;
    }
    case 'p':
    case 'P': {
      const braced = /^\\[pP]\{(\^?[A-Za-z_]+)\}/.exec(p.slice(i));
      if (braced) return [unicodeClass(braced[1]!, c === 'P'), braced[0].length];
      const one = /^\\[pP]([A-Za-z])/.exec(p.slice(i));
      if (one) return [unicodeClass(one[1]!, c === 'P'), 3];
      break;
    }
    case 'Q': {
      const end = p.indexOf('\\E', i + 2);
      const text = end < 0 ? p.slice(i + 2) : p.slice(i + 2, end);
      return [[...text].map(literal).join(''), (end < 0 ? p.length : end + 2) - i];
    }
    default: {
      const oct = /^\\([0-7]{1,3})/.exec(p.slice(i));
      if (oct && (oct[1]!.length > 1 || oct[1] === '0')) return [`\\u{${Number.parseInt(oct[1]!, 8).toString(16)}}`, oct[0].length];
      if (/[!-/:-@[-`{-~]/.test(c)) return [hexEscape(c), 2];
    }
  }
  throw new RegexSyntaxError(`invalid escape sequence: \`\\${c}\``);
}

/** A bracket expression at `i`. */
function translateClass(p: string, i: number): [string, number] {
  let j = i + 1;
  let out = '[';
  if (p[j] === '^') {
    out += '^';
    j++;
  }
  let first = true;
  while (j < p.length) {
    const ch = p[j]!;
    if (ch === ']' && !first) return [out + ']', j + 1 - i];
    first = false;
    if (ch === '[' && p[j + 1] === ':') {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(j));
      const set = m && POSIX[m[2]!];
      if (!m || !set) throw new RegexSyntaxError(`invalid character class range: \`${p.slice(j, j + 10)}\``);
      if (m[1]) throw new RegexSyntaxError('negated POSIX classes are not supported');
      out += set;
      j += m[0].length;
    } else if (ch === '\\') {
      const [text, len] = translateEscape(p, j, true, false);
      out += text;
      j += len;
    } else if (ch === '-') {
      // A '-' at the start or end of the class is literal; elsewhere it is a range.
      const atEdge = out.endsWith('[') || out.endsWith('[^') || p[j + 1] === ']';
      out += atEdge ? '\\-' : '-';
      j++;
    } else if (ch === '[' || ch === ']' || ch === '/' || ch === '{' || ch === '}' || ch === '(' || ch === ')' || ch === '|') {
      out += '\\' + ch;
      j++;
    } else {
      out += ch;
      j++;
    }
  }
  throw new RegexSyntaxError(`missing closing ]: \`${p.slice(i)}\``);
}

const CACHE_LIMIT = 1000;
const cache = new Map<string, RegExp | RegexSyntaxError>();

/** Compiled (and cached) RE2 pattern; throws RegexSyntaxError. The RegExp is shared: use `g`-free methods or reset lastIndex. */
export function compileRe2(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re === undefined) {
    try {
      const t = translateRe2(pattern);
      re = new RegExp(t.source, t.flags);
    } catch (err) {
      re = err instanceof RegexSyntaxError ? err : new RegexSyntaxError(`error parsing regexp: ${(err as Error).message}`);
    }
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(pattern, re);
  }
  if (re instanceof RegexSyntaxError) throw re;
  return re;
}

/** A fresh global copy of a compiled pattern, for iteration. */
export function globalRe2(pattern: string): RegExp {
  const re = compileRe2(pattern);
  return new RegExp(re.source, re.flags + 'g');
}

/** All matches as Go's FindAll does: no empty match right after a previous match. */
export function findAll(pattern: string, s: string, n: number): RegExpExecArray[] {
  const re = globalRe2(pattern);
  const out: RegExpExecArray[] = [];
  let prevEnd = -1;
  while (n < 0 || out.length < n) {
    const m = re.exec(s);
    if (!m) break;
    const end = m.index + m[0].length;
    if (m[0].length === 0) {
      // Advance one code point past an empty match.
      const cp = s.codePointAt(m.index);
      re.lastIndex = m.index + (cp !== undefined && cp > 0xffff ? 2 : 1);
      if (m.index === prevEnd) continue;
    }
    out.push(m);
    prevEnd = end;
    if (re.lastIndex > s.length) break;
  }
  return out;
}
