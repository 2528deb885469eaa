/** units.parse and units.parse_bytes: SI and binary suffixes, exact decimal arithmetic. */
import { normalizeNumber, numberFromText, type Value } from '../value.ts';
import { fail, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_NUMBER, T_STRING } from './types.ts';

const SI: Record<string, bigint> = { k: 10n ** 3n, m: 10n ** 6n, g: 10n ** 9n, t: 10n ** 12n, p: 10n ** 15n, e: 10n ** 18n };
const BIN: Record<string, bigint> = { ki: 2n ** 10n, mi: 2n ** 20n, gi: 2n ** 30n, ti: 2n ** 40n, pi: 2n ** 50n, ei: 2n ** 60n };

/** An exact decimal: value = mant / 10^scale. */
interface Decimal {
  mant: bigint;
  scale: number;
}

function parseDecimal(text: string): Decimal | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const frac = m[3] ?? '';
  let mant = BigInt((m[2] || '0') + frac);
  let scale = frac.length - Number(m[4] ?? 0);
  if (scale < 0) {
    mant *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { mant: m[1] === '-' ? -mant : mant, scale };
}

function decimalToValue(d: Decimal, truncate: boolean): Value {
  const div = 10n ** BigInt(d.scale);
  if (d.mant % div === 0n || truncate) return normalizeNumber(d.mant / div);
  const neg = d.mant < 0n;
  const abs = neg ? -d.mant : d.mant;
  const digits = abs.toString().padStart(d.scale + 1, '0');
  const text = `${neg ? '-' : ''}${digits.slice(0, digits.length - d.scale)}.${digits.slice(digits.length - d.scale)}`;
  return numberFromText(text);
}

function prepare(s: string): string {
  const stripped = s.replace(/"/g, '');
  if (/\s/.test(stripped)) fail('spaces not allowed in resource strings');
  return stripped;
}

function parseUnits(s: string): Value {
  const text = prepare(s);
  const m = /^[+-]?[0-9.]*(?:[eE][+-]?[0-9]+)?/.exec(text)!;
  const numPart = m[0];
  const unit = text.slice(numPart.length);
  // "5E" is five exa, not an exponent without digits; the regex already leaves it in the unit.
  if (numPart === '' || numPart === '+' || numPart === '-') fail('no amount provided');
  const d = parseDecimal(numPart);
  if (!d) fail('could not parse amount to a number');
  let factor: Decimal = { mant: 1n, scale: 0 };
  if (unit === 'm') factor = { mant: 1n, scale: 3 };
  else if (unit !== '') {
    const lower = unit.toLowerCase();
    const f = BIN[lower] ?? SI[lower];
    if (f === undefined) fail(`unknown unit: ${unit}`);
    factor = { mant: f, scale: 0 };
  }
  return decimalToValue({ mant: d.mant * factor.mant, scale: d.scale + factor.scale }, false);
}

function parseBytes(s: string): Value {
  const text = prepare(s).toLowerCase();
  const m = /^[0-9.]*(?:e[-+]?[0-9]+)?/.exec(text)!;
  if (m[0] === '') fail('no byte amount provided');
  const d = parseDecimal(m[0]);
  if (!d) fail('could not parse byte amount to a number');
  const unit = text.slice(m[0].length).replace(/b$/, '');
  let factor = 1n;
  if (unit !== '') {
    const f = BIN[unit] ?? SI[unit];
    if (f === undefined) fail(`byte unit not recognized: ${text.slice(m[0].length)}`);
    factor = f;
  }
  return decimalToValue({ mant: d.mant * factor, scale: d.scale }, true);
}

export const UNITS: readonly BuiltinDefinition[] = [
  builtin('units.parse', [T_STRING], T_NUMBER, (a) => parseUnits(stringArg(a, 0))),
  builtin('units.parse_bytes', [T_STRING], T_NUMBER, (a) => parseBytes(stringArg(a, 0))),
];
