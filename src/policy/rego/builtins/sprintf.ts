/**
 * Go `fmt.Sprintf` as OPA's `sprintf` uses it. OPA hands Go `int`s (integers in the int64 range),
 * `*big.Int`s (larger integers), floats and
 * strings; every other value is passed as its Rego text, so `%v` of an array prints `[1, 2]` and a
 * boolean behaves like the string "true". Wrong verbs print Go's `%!verb(type=value)` markers.
 */
import { formatValue, NumberText, type Value } from '../value.ts';

type GoArg = { kind: 'int'; v: bigint; big: boolean } | { kind: 'float'; v: number } | { kind: 'string'; v: string };

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function toGoArg(v: Value): GoArg {
  if (typeof v === 'bigint') return { kind: 'int', v, big: v < INT64_MIN || v > INT64_MAX };
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { kind: 'int', v: BigInt(v), big: false } : { kind: 'float', v };
  if (typeof v === 'string') return { kind: 'string', v };
  // A literal beyond float64's range is neither an int nor a float64 for Go: OPA passes its text.
  if (v instanceof NumberText) return { kind: 'string', v: v.text() };
  return { kind: 'string', v: formatValue(v) };
}

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  zero: boolean;
  space: boolean;
  width?: number;
  prec?: number;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  if (spec.width === undefined || s.length >= spec.width) return s;
  const n = spec.width - [...s].length;
  if (n <= 0) return s;
  if (spec.minus) return s + ' '.repeat(n);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

function signed(s: string, negative: boolean, spec: Spec): string {
  if (negative) return '-' + s;
  if (spec.plus) return '+' + s;
  if (spec.space) return ' ' + s;
  return s;
}

function goTypeName(a: GoArg): string {
  if (a.kind === 'int') return a.big ? '*big.Int' : 'int';
  return a.kind === 'float' ? 'float64' : 'string';
}

function goValueText(a: GoArg): string {
  return a.kind === 'int' ? a.v.toString() : a.kind === 'float' ? formatFloatG(a.v, -1) : a.v;
}

function badVerb(verb: string, a: GoArg): string {
  return `%!${verb}(${goTypeName(a)}=${goValueText(a)})`;
}

/** Go's %e with the given precision (exponent at least two digits). */
function formatFloatE(v: number, prec: number, upper = false): string {
  const s = v.toExponential(prec < 0 ? undefined : Math.min(prec, 100));
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s)!;
  const out = `${m[1]}e${m[2]}${m[3]!.padStart(2, '0')}`;
  return upper ? out.toUpperCase() : out;
}

/** Go's %g: shortest representation for prec -1, exponent form when exp < -4 or exp >= precision. */
export function formatFloatG(v: number, prec: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const shortest = prec < 0;
  const p = prec === 0 ? 1 : prec;
  const exp = shortest ? v.toExponential() : v.toExponential(p - 1);
  const m = /^-?(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exp)!;
  const digits = m[1]! + (m[2] ?? '');
  const e = Number(m[3]);
  // Go decides between %e and %f form with precision 6 when printing the shortest digits.
  const limit = shortest ? 6 : p;
  if (e < -4 || e >= limit) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const trimmed = shortest ? mant : mant.replace(/\.?0+$/, '');
    return `${v < 0 ? '-' : ''}${trimmed}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  let fixed: string;
  if (e >= 0) fixed = digits.length > e + 1 ? `${digits.slice(0, e + 1)}.${digits.slice(e + 1)}` : digits.padEnd(e + 1, '0');
  else fixed = `0.${'0'.repeat(-e - 1)}${digits}`;
  if (!shortest && fixed.includes('.')) fixed = fixed.replace(/\.?0+$/, '');
  return `${v < 0 ? '-' : ''}${fixed}`;
}

function formatInt(v: bigint, verb: string, spec: Spec): string {
  const neg = v < 0n;
  const abs = neg ? -v : v;
  let digits: string;
  switch (verb) {
    case 'd':
    case 'v':
    case 's':
      digits = abs.toString();
      break;
    case 'x':
      digits = (spec.sharp ? '0x' : '') + abs.toString(16);
      break;
    case 'X':
      digits = (spec.sharp ? '0X' : '') + abs.toString(16).toUpperCase();
      break;
    case 'o':
      digits = (spec.sharp ? '0' : '') + abs.toString(8);
      break;
    case 'O':
      digits = '0o' + abs.toString(8);
      break;
    case 'b':
      digits = abs.toString(2);
      break;
    default:
      return badVerb(verb, { kind: 'int', v, big: true });
  }
  if (spec.prec !== undefined) digits = digits.padStart(spec.prec, '0');
  return pad(signed(digits, neg, spec), spec, spec.prec === undefined);
}

function formatFloat(v: number, verb: string, spec: Spec): string {
  const neg = v < 0 || Object.is(v, -0);
  const a = Math.abs(v);
  let body: string;
  switch (verb) {
    case 'f':
    case 'F':
      body = Number.isFinite(a) ? a.toFixed(Math.min(spec.prec ?? 6, 100)) : a === Infinity ? 'Inf' : 'NaN';
      break;
    case 'e':
    case 'E':
      body = formatFloatE(a, spec.prec ?? 6, verb === 'E');
      break;
    case 'g':
    case 'G':
    case 'v':
      body = formatFloatG(a, spec.prec ?? -1);
      if (verb === 'G') body = body.toUpperCase();
      break;
    default:
      return badVerb(verb, { kind: 'float', v });
  }
  return pad(signed(body, neg, spec), spec, true);
}

function goQuote(s: string): string {
  return JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, '\\x$1').replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function formatString(s: string, verb: string, spec: Spec): string {
  switch (verb) {
    case 's':
    case 'v': {
      const text = spec.prec !== undefined ? [...s].slice(0, spec.prec).join('') : s;
      return pad(text, spec, false);
    }
    case 'q':
      return pad(goQuote(s), spec, false);
    case 'x':
    case 'X': {
      const hex = Buffer.from(s, 'utf8').toString('hex');
      return pad(verb === 'X' ? hex.toUpperCase() : hex, spec, false);
    }
    default:
      return badVerb(verb, { kind: 'string', v: s });
  }
}

function formatArg(a: GoArg, verb: string, spec: Spec): string {
  if (verb === 'T') return pad(goTypeName(a), spec, false);
  if (a.kind === 'int') {
    // Go int: d v b o O x X c q U; *big.Int: d v s b o x X. Anything else is a bad verb.
    const ok = a.big ? 'dvsboxX' : 'dvboOxXcqU';
    if (!ok.includes(verb)) return badVerb(verb, a);
    const cp = Number(a.v);
    if (verb === 'c') return pad(String.fromCodePoint(cp), spec, false);
    if (verb === 'q') return pad(`'${String.fromCodePoint(cp)}'`, spec, false);
    if (verb === 'U') return pad(`U+${a.v.toString(16).toUpperCase().padStart(4, '0')}`, spec, false);
    return formatInt(a.v, verb, spec);
  }
  if (a.kind === 'float') return formatFloat(a.v, verb, spec);
  return formatString(a.v, verb, spec);
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** Decimal digits at i (0 when none) and the index after them. */
function readInt(s: string, i: number): [number, number] {
  let n = 0;
  while (isDigit(s, i)) n = n * 10 + (s.charCodeAt(i++) - 48);
  return [n, i];
}

/** Formats like Go's fmt.Sprintf with OPA's argument conversion. */
export function goSprintf(format: string, values: readonly Value[]): string {
  if (values.length === 0 && !format.includes('%')) return format;
  const args = values.map(toGoArg);
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec: Spec = { minus: false, plus: false, sharp: false, zero: false, space: false };
    for (; i < format.length; i++) {
      const f = format[i];
      if (f === '-') spec.minus = true;
      else if (f === '+') spec.plus = true;
      else if (f === '#') spec.sharp = true;
      else if (f === '0') spec.zero = true;
      else if (f === ' ') spec.space = true;
      else break;
    }
    if (format[i] === '*') {
      const w = args[argi++];
      spec.width = w?.kind === 'int' ? Number(w.v) : undefined;
      i++;
    } else if (isDigit(format, i)) {
      const [n, next] = readInt(format, i);
      spec.width = n;
      i = next;
    }
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        const p = args[argi++];
        spec.prec = p?.kind === 'int' ? Number(p.v) : 0;
        i++;
      } else {
        const [n, next] = readInt(format, i);
        spec.prec = n;
        i = next;
      }
    }
    if (i >= format.length) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = format[i++]!;
    if (verb === '%') {
      out += '%';
      continue;
    }
    const arg = args[argi++];
    out += arg === undefined ? `%!${verb}(MISSING)` : formatArg(arg, verb, spec);
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => `${goTypeName(a)}=${goValueText(a)}`).join(', ') + ')';
  }
  return out;
}
