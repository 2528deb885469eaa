/** Number built-ins: rounding, ranges, bit operations, rand.intn. */
import { charge, tick } from '../budget.ts';
import { isInteger, numberFromText, type Value } from '../value.ts';
import { fail, numberArg, operandError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_NUMBER, T_STRING, tArray } from './types.ts';

/** Go's math.Round: halves away from zero (JS Math.round rounds halves up). */
function roundHalfAway(n: number): number {
  const r = Math.sign(n) * Math.round(Math.abs(n));
  return Object.is(r, -0) ? 0 : r;
}

function unary(name: string, f: (n: number) => number): BuiltinDefinition {
  return builtin(name, [T_NUMBER], T_NUMBER, (a) => {
    const n = numberArg(a, 0);
    if (typeof n === 'bigint') return name === 'abs' && n < 0n ? -n : n;
    const r = f(n);
    return Object.is(r, -0) ? 0 : r;
  });
}

/** An integer operand as bigint (bits and ranges work on exact integers). */
function bigIntArg(a: Value[], i: number): bigint {
  const n = numberArg(a, i);
  if (!isInteger(n)) throw operandError(i + 1, 'must be integer number but got floating-point number');
  return typeof n === 'bigint' ? n : BigInt(n);
}

function toValue(n: bigint): number | bigint {
  return numberFromText(n.toString());
}

/** Budget units per number of a range (allocating and boxing one costs more than one step). */
const RANGE_UNITS_PER_NUMBER = 20;

/** Upper bound of a range's length: a policy must not be able to exhaust the server's memory. */
export const MAX_RANGE_LENGTH = 10_000_000n;

function range(from: bigint, to: bigint, step: bigint): Value[] {
  const span = from <= to ? to - from : from - to;
  if (span / step + 1n > MAX_RANGE_LENGTH) fail(`range of ${span / step + 1n} numbers exceeds the limit of ${MAX_RANGE_LENGTH}`);
  // Charged before the array is built: a range the evaluation budget cannot afford is refused here.
  charge(Number(span / step + 1n) * RANGE_UNITS_PER_NUMBER);
  const out: Value[] = [];
  // Each number is a unit too: building a large range is work the budget must be able to stop.
  if (from <= to) {
    for (let i = from; i <= to; i += step) {
      tick();
      out.push(toValue(i));
    }
  } else {
    for (let i = from; i >= to; i -= step) {
      tick();
      out.push(toValue(i));
    }
  }
  return out;
}

function bits(name: string, f: (a: bigint, b: bigint) => bigint): BuiltinDefinition {
  return builtin(name, [T_NUMBER, T_NUMBER], T_NUMBER, (a) => toValue(f(bigIntArg(a, 0), bigIntArg(a, 1))));
}

function shift(name: string, f: (a: bigint, b: bigint) => bigint): BuiltinDefinition {
  return builtin(name, [T_NUMBER, T_NUMBER], T_NUMBER, (a) => {
    const x = bigIntArg(a, 0);
    const y = bigIntArg(a, 1);
    if (y < 0n) throw operandError(2, 'must be an unsigned integer number but got a negative integer');
    return toValue(f(x, y));
  });
}

/** FNV-1a over the text: a stable seed for rand.intn's per-evaluation memo. */
function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export const NUMBERS: readonly BuiltinDefinition[] = [
  unary('abs', Math.abs),
  unary('round', roundHalfAway),
  unary('ceil', Math.ceil),
  unary('floor', Math.floor),
  builtin('numbers.range', [T_NUMBER, T_NUMBER], tArray(T_NUMBER), (a) => range(bigIntArg(a, 0), bigIntArg(a, 1), 1n)),
  builtin('numbers.range_step', [T_NUMBER, T_NUMBER, T_NUMBER], tArray(T_NUMBER), (a) => {
    const from = bigIntArg(a, 0);
    const to = bigIntArg(a, 1);
    const step = bigIntArg(a, 2);
    if (step <= 0n) fail('step must be a positive integer');
    return range(from, to, step);
  }),
  bits('bits.and', (x, y) => x & y),
  bits('bits.or', (x, y) => x | y),
  bits('bits.xor', (x, y) => x ^ y),
  builtin('bits.negate', [T_NUMBER], T_NUMBER, (a) => toValue(~bigIntArg(a, 0))),
  shift('bits.lsh', (x, y) => x << y),
  shift('bits.rsh', (x, y) => x >> y),
  builtin(
    'rand.intn',
    [T_STRING, T_NUMBER],
    T_NUMBER,
    (a, ctx) => {
      const str = stringArg(a, 0);
      const n = Number(bigIntArg(a, 1));
      if (n === 0) return 0;
      const key = `rand.intn:${str}:${n}`;
      const cached = ctx.cache.get(key);
      if (typeof cached === 'number') return cached;
      const seed = ctx.seed === undefined ? Math.random() : ((hashText(key) ^ ctx.seed) >>> 0) / 2 ** 32;
      const r = Math.floor(seed * Math.abs(n));
      ctx.cache.set(key, r);
      return r;
    },
    { nondeterministic: true },
  ),
];
