/**
 * Operand access with OPA's runtime type errors. Positions are 1-based as in OPA's messages
 * ("operand 1 must be string but got number").
 */
import {
  isInteger,
  isObject,
  isPlainObject,
  isSet,
  numericValue,
  type PlainObject,
  type RegoObject,
  type RegoSet,
  toNumber,
  typeName,
  type Value,
} from '../value.ts';
import { BuiltinError, BuiltinTypeError } from './errors.ts';

/** "operand N must be X but got Y", or "must be one of {X, Y}" for several expected types. */
export function operandTypeError(pos: number, got: Value, ...expected: string[]): BuiltinTypeError {
  const want = expected.length === 1 ? expected[0] : `one of {${expected.join(', ')}}`;
  return new BuiltinTypeError(`operand ${pos} must be ${want} but got ${typeName(got)}`);
}

/** "operand N must be array of X but got array containing Y". */
export function operandElementError(pos: number, container: string, element: Value, ...expected: string[]): BuiltinTypeError {
  const want = expected.length === 1 ? expected[0] : `one of {${expected.join(', ')}}`;
  return new BuiltinTypeError(`operand ${pos} must be ${container} of ${want} but got ${container} containing ${typeName(element)}`);
}

/** "operand N <free text>" as a type error. */
export function operandError(pos: number, message: string): BuiltinTypeError {
  return new BuiltinTypeError(`operand ${pos} ${message}`);
}

export function stringArg(args: Value[], i: number): string {
  const v = args[i]!;
  if (typeof v !== 'string') throw operandTypeError(i + 1, v, 'string');
  return v;
}

export function numberArg(args: Value[], i: number): number | bigint {
  const v = args[i]!;
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  const n = numericValue(v);
  if (n === undefined) throw operandTypeError(i + 1, v, 'number');
  return n;
}

/** A number operand that must be an integer that fits a JS number. */
export function intArg(args: Value[], i: number): number {
  const n = numberArg(args, i);
  if (!isInteger(n)) throw operandError(i + 1, 'must be integer number but got floating-point number');
  return toNumber(n);
}

export function booleanArg(args: Value[], i: number): boolean {
  const v = args[i]!;
  if (typeof v !== 'boolean') throw operandTypeError(i + 1, v, 'boolean');
  return v;
}

export function arrayArg(args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (!Array.isArray(v)) throw operandTypeError(i + 1, v, 'array');
  return v;
}

export function setArg(args: Value[], i: number): RegoSet {
  const v = args[i]!;
  if (!isSet(v)) throw operandTypeError(i + 1, v, 'set');
  return v;
}

export function objectArg(args: Value[], i: number): PlainObject | RegoObject {
  const v = args[i]!;
  if (!isObject(v)) throw operandTypeError(i + 1, v, 'object');
  return v;
}

export function plainObjectArg(args: Value[], i: number): PlainObject | undefined {
  const v = objectArg(args, i);
  return isPlainObject(v) ? v : undefined;
}

/** Elements of an array or set operand. */
export function arrayOrSetArg(args: Value[], i: number): readonly Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (isSet(v)) return v.values();
  throw operandTypeError(i + 1, v, 'array', 'set');
}

/** Strings of an array or set operand, each element checked. */
export function stringsOf(args: Value[], i: number): string[] {
  const v = args[i]!;
  const items = Array.isArray(v) ? v : isSet(v) ? v.values() : undefined;
  if (!items) throw operandTypeError(i + 1, v, 'set', 'array');
  const out: string[] = [];
  for (const x of items) {
    if (typeof x !== 'string') throw operandElementError(i + 1, Array.isArray(v) ? 'array' : 'set', x, 'string');
    out.push(x);
  }
  return out;
}

export function fail(message: string): never {
  throw new BuiltinError(message);
}
