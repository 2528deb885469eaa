/** Aggregates: count, sum, product, max, min, sort. */
import { compare, isNumber, isObject, isSet, numAdd, numericValue, numMul, objectSize, type Value } from '../value.ts';
import { operandElementError, operandTypeError } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_ANY, T_NUMBER, tArray, tSet, tUnion, T_COLLECTION, T_STRING } from './types.ts';

/** Number of Unicode code points (Go counts runes). */
export function runeCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

function elementsOf(v: Value): readonly Value[] {
  if (Array.isArray(v)) return v;
  if (isSet(v)) return v.values();
  throw operandTypeError(1, v, 'set', 'array');
}

function numbersOf(v: Value): Array<number | bigint> {
  const items = elementsOf(v);
  let literals = false;
  for (const x of items) {
    if (isNumber(x)) continue;
    if (numericValue(x) === undefined) throw operandElementError(1, Array.isArray(v) ? 'array' : 'set', x, 'number');
    literals = true;
  }
  return literals ? items.map((x) => numericValue(x)!) : (items as Array<number | bigint>);
}

function extreme(v: Value, sign: 1 | -1): Value | undefined {
  const items = elementsOf(v);
  if (items.length === 0) return undefined;
  let best: Value = items[0] as Value;
  for (const x of items) if (compare(x, best) * sign > 0) best = x;
  return best;
}

const NUM_COLL = tUnion(tArray(T_NUMBER), tSet(T_NUMBER));
const ANY_COLL = tUnion(tArray(), tSet());

export const AGGREGATES: readonly BuiltinDefinition[] = [
  builtin('count', [tUnion(T_COLLECTION, T_STRING)], T_NUMBER, (a) => {
    const v = a[0]!;
    if (typeof v === 'string') return runeCount(v);
    if (Array.isArray(v)) return v.length;
    if (isSet(v)) return v.size;
    if (isObject(v)) return objectSize(v);
    throw operandTypeError(1, v, 'array', 'object', 'set', 'string');
  }),
  builtin('sum', [NUM_COLL], T_NUMBER, (a) => numbersOf(a[0]!).reduce<number | bigint>((acc, x) => numAdd(acc, x), 0)),
  builtin('product', [NUM_COLL], T_NUMBER, (a) => numbersOf(a[0]!).reduce<number | bigint>((acc, x) => numMul(acc, x), 1)),
  builtin('max', [ANY_COLL], T_ANY, (a) => extreme(a[0]!, 1)),
  builtin('min', [ANY_COLL], T_ANY, (a) => extreme(a[0]!, -1)),
  builtin('sort', [ANY_COLL], tArray(), (a) => [...elementsOf(a[0]!)].sort(compare)),
];
