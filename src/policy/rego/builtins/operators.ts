/** Arithmetic, comparison, set operators and membership (`in`), by OPA's internal names. */
import {
  compare,
  equals,
  isInteger,
  isNumber,
  isObject,
  isSet,
  numAdd,
  numDiv,
  numMul,
  numRem,
  numericValue,
  numSub,
  objectGet,
  RegoObject,
  RegoSet,
  toNumber,
  type Value,
} from '../value.ts';
import { fail, numberArg, operandTypeError, setArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_ANY, T_BOOLEAN, T_NUMBER, tSet, tUnion } from './types.ts';

const NUM2 = [T_NUMBER, T_NUMBER];
const T_NUM_OR_SET = tUnion(T_NUMBER, tSet());

function isZero(n: number | bigint): boolean {
  return typeof n === 'bigint' ? n === 0n : n === 0;
}

function minus(args: Value[]): Value {
  const [a, b] = args as [Value, Value];
  const an = numericValue(a);
  const bn = numericValue(b);
  if (an !== undefined && bn !== undefined) return numSub(an, bn);
  if (isSet(a) && isSet(b)) {
    const out = new RegoSet();
    for (const v of a.unorderedValues()) if (!b.has(v)) out.add(v);
    return out;
  }
  if (an === undefined && !isSet(a)) throw operandTypeError(1, a, 'number', 'set');
  throw operandTypeError(2, b, an !== undefined ? 'number' : 'set');
}

function intersect(a: RegoSet, b: RegoSet): RegoSet {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  const out = new RegoSet();
  for (const v of small.unorderedValues()) if (large.has(v)) out.add(v);
  return out;
}

function unite(a: RegoSet, b: RegoSet): RegoSet {
  const out = new RegoSet(a.unorderedValues());
  for (const v of b.unorderedValues()) out.add(v);
  return out;
}

/** `x in xs`: arrays and sets by element, objects by value; anything else is not a container. */
export function member(x: Value, xs: Value): boolean {
  if (Array.isArray(xs)) {
    // Strings and booleans are equal only when identical: skip the general comparison.
    if (typeof x === 'string' || typeof x === 'boolean') return xs.includes(x);
    for (const v of xs) if (equals(v, x)) return true;
    return false;
  }
  if (isSet(xs)) return xs.has(x);
  if (xs instanceof RegoObject) {
    for (const [, v] of xs.entries()) if (equals(v, x)) return true;
    return false;
  }
  if (isObject(xs)) {
    for (const v of Object.values(xs)) if (equals(v, x)) return true;
  }
  return false;
}

/** `k, v in xs`: object key/value, array index/element, set element (key and value both the element). */
export function memberWithKey(k: Value, v: Value, xs: Value): boolean {
  if (isSet(xs)) return xs.has(k) && equals(k, v);
  if (Array.isArray(xs)) {
    if (!isNumber(k) || !isInteger(k)) return false;
    const i = toNumber(k);
    return i >= 0 && i < xs.length && equals(xs[i]!, v);
  }
  if (isObject(xs)) {
    const got = objectGet(xs, k);
    return got !== undefined && equals(got, v);
  }
  return false;
}

export const OPERATORS: readonly BuiltinDefinition[] = [
  builtin('plus', NUM2, T_NUMBER, (a) => numAdd(numberArg(a, 0), numberArg(a, 1))),
  builtin('minus', [T_NUM_OR_SET, T_NUM_OR_SET], T_NUM_OR_SET, minus),
  builtin('mul', NUM2, T_NUMBER, (a) => numMul(numberArg(a, 0), numberArg(a, 1))),
  builtin('div', NUM2, T_NUMBER, (a) => {
    const x = numberArg(a, 0);
    const y = numberArg(a, 1);
    if (isZero(y)) fail('divide by zero');
    return numDiv(x, y);
  }),
  builtin('rem', NUM2, T_NUMBER, (a) => {
    const x = numberArg(a, 0);
    const y = numberArg(a, 1);
    if (!isInteger(x) || !isInteger(y)) fail('modulo on floating-point number');
    if (isZero(y)) fail('modulo by zero');
    return numRem(x, y);
  }),
  builtin('equal', [T_ANY, T_ANY], T_BOOLEAN, (a) => equals(a[0]!, a[1]!)),
  builtin('neq', [T_ANY, T_ANY], T_BOOLEAN, (a) => !equals(a[0]!, a[1]!)),
  builtin('lt', [T_ANY, T_ANY], T_BOOLEAN, (a) => compare(a[0]!, a[1]!) < 0),
  builtin('lte', [T_ANY, T_ANY], T_BOOLEAN, (a) => compare(a[0]!, a[1]!) <= 0),
  builtin('gt', [T_ANY, T_ANY], T_BOOLEAN, (a) => compare(a[0]!, a[1]!) > 0),
  builtin('gte', [T_ANY, T_ANY], T_BOOLEAN, (a) => compare(a[0]!, a[1]!) >= 0),
  builtin('and', [tSet(), tSet()], tSet(), (a) => intersect(setArg(a, 0), setArg(a, 1))),
  builtin('or', [tSet(), tSet()], tSet(), (a) => unite(setArg(a, 0), setArg(a, 1))),
  builtin('internal.member_2', [T_ANY, T_ANY], T_BOOLEAN, (a) => member(a[0]!, a[1]!)),
  builtin('internal.member_3', [T_ANY, T_ANY, T_ANY], T_BOOLEAN, (a) => memberWithKey(a[0]!, a[1]!, a[2]!)),
];
