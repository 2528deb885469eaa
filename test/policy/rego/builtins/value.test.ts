import { describe, expect, it } from 'vitest';
import {
  compare,
  equals,
  formatValue,
  fromJSON,
  keyOf,
  makeObject,
  numAdd,
  numDiv,
  numberFromText,
  numMul,
  numSub,
  objectEntries,
  objectGet,
  RegoObject,
  RegoSet,
  stringifyJSON,
  toJSON,
  typeName,
  type Value,
} from '../../../../src/policy/rego/value.ts';

describe('value order', () => {
  it('orders types null < boolean < number < string < array < object < set', () => {
    const values: Value[] = [new RegoSet([1]), { a: 1 }, [1], 'a', 1, true, null];
    const sorted = [...values].sort(compare);
    expect(sorted.map(typeName)).toEqual(['null', 'boolean', 'number', 'string', 'array', 'object', 'set']);
  });

  it('compares numbers by value across integer, float and big representations', () => {
    expect(compare(1, 1.0)).toBe(0);
    expect(compare(2, 10)).toBe(-1);
    expect(compare(18446744073709551614n, 9007199254740993n)).toBe(1);
    expect(compare(1.5, 9007199254740993n)).toBe(-1);
    expect(compare(-9007199254740993n, -1)).toBe(-1);
  });

  it('compares strings by code point, as Go compares UTF-8 bytes', () => {
    expect(compare('a', 'b')).toBe(-1);
    expect(compare('ab', 'a')).toBe(1);
    // U+1F600 (surrogate pair in UTF-16) sorts after U+FF01 by code point.
    expect(compare('\u{1F600}', '\uFF01')).toBe(1);
  });

  it('compares arrays element-wise then by length', () => {
    expect(compare([1, 2], [1, 3])).toBe(-1);
    expect(compare([1, 2], [1])).toBe(1);
    expect(compare([], [])).toBe(0);
  });

  it('compares objects by sorted keys then values', () => {
    expect(compare({ a: 1 }, { b: 0 })).toBe(-1);
    expect(compare({ a: 2 }, { a: 1 })).toBe(1);
    expect(compare({ a: 1 }, { a: 1, b: 1 })).toBe(-1);
  });
});

describe('equality across representations', () => {
  it('treats a RegoObject with only string keys like the plain object', () => {
    const ro = new RegoObject([
      ['b', 2],
      ['a', 1],
    ]);
    expect(equals(ro, { a: 1, b: 2 })).toBe(true);
    expect(equals(ro, { a: 1, b: 3 })).toBe(false);
    expect(keyOf(ro)).toBe(keyOf({ b: 2, a: 1 }));
  });

  it('makes a plain object when every key is a string and a RegoObject otherwise', () => {
    expect(makeObject([['x', 1]])).toEqual({ x: 1 });
    const mixed = makeObject([
      [1, 'one'],
      ['x', 2],
    ]);
    expect(mixed).toBeInstanceOf(RegoObject);
    expect(objectGet(mixed, 1)).toBe('one');
    expect(objectGet(mixed, 1.0)).toBe('one');
    expect(objectGet(mixed, '1')).toBeUndefined();
  });

  it('keeps __proto__ as an ordinary own key', () => {
    const o = makeObject([['__proto__', 1]]);
    expect(objectGet(o, '__proto__')).toBe(1);
    expect(objectEntries(o)).toEqual([['__proto__', 1]]);
  });

  it('distinguishes 1 from "1" and true from "true"', () => {
    expect(equals(1, '1')).toBe(false);
    expect(keyOf(1)).not.toBe(keyOf('1'));
    expect(keyOf(true)).not.toBe(keyOf('true'));
    expect(keyOf('\u0000n1')).not.toBe(keyOf(1));
  });

  it('compares sets by members regardless of insertion order', () => {
    expect(equals(new RegoSet([1, 2, 3]), new RegoSet([3, 2, 1]))).toBe(true);
    expect(equals(new RegoSet([1, 2]), new RegoSet([1, 2, 3]))).toBe(false);
  });
});

describe('sets', () => {
  it('deduplicates structurally equal objects and iterates in OPA order', () => {
    const s = new RegoSet([{ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }, 'x', 1.0, 1, null]);
    expect(s.size).toBe(4);
    expect(s.values()).toEqual([null, 1, 'x', { a: 1, b: [1, 2] }]);
    expect(s.has({ b: [1, 2], a: 1 })).toBe(true);
    expect(s.has({ a: 1 })).toBe(false);
  });

  it('uses a different key for sets of the same members as arrays', () => {
    expect(keyOf(new RegoSet([1, 2]))).not.toBe(keyOf([1, 2]));
    expect(keyOf(new RegoSet([2, 1]))).toBe(keyOf(new RegoSet([1, 2])));
  });
});

describe('numbers', () => {
  it('keeps integers beyond 2^53 exact from text and JSON', () => {
    expect(numberFromText('18446744073709551614')).toBe(18446744073709551614n);
    expect(numberFromText('42')).toBe(42);
    expect(numberFromText('1.5')).toBe(1.5);
    expect(fromJSON({ a: [9223372036854775807n, 3n] })).toEqual({ a: [9223372036854775807n, 3] });
  });

  it('switches to exact arithmetic when a result leaves the safe range', () => {
    expect(numAdd(9007199254740991, 2)).toBe(9007199254740993n);
    expect(numAdd(9007199254740993n, -2)).toBe(9007199254740991);
    expect(numMul(4294967296, 4294967296)).toBe(18446744073709551616n);
    expect(numAdd(0.5, 0.25)).toBe(0.75);
  });

  it('adds and multiplies decimals like OPA (0.1 + 0.2 is 0.3)', () => {
    expect(numAdd(0.1, 0.2)).toBe(0.3);
    expect(numSub(0.3, 0.1)).toBe(0.2);
    expect(numMul(0.1, 3)).toBe(0.3);
    expect(numMul(1.1, 1.1)).toBe(1.21);
    expect(numAdd(1e-7, 2e-7)).toBe(3e-7);
    expect(numAdd(2.5, 2.5)).toBe(5);
    expect(numDiv(0.3, 0.1)).toBe(3);
    expect(numDiv(1, 3)).toBe(1 / 3);
    expect(numDiv(-1.5, 0.5)).toBe(-3);
  });

  it('returns plain input unchanged from fromJSON', () => {
    const input = { a: [1, 'x', { b: null }] };
    expect(fromJSON(input)).toBe(input);
  });
});

describe('conversions', () => {
  it('turns sets into sorted arrays and non-string keys into JSON text in toJSON', () => {
    const v = makeObject([
      [1, new RegoSet(['b', 'a'])],
      ['k', [true]],
    ]);
    expect(toJSON(v)).toEqual({ '1': ['a', 'b'], k: [true] });
  });

  it('prints Rego term syntax', () => {
    expect(formatValue(new RegoSet())).toBe('set()');
    expect(formatValue(new RegoSet([2, 1]))).toBe('{1, 2}');
    expect(formatValue({ b: 'x', a: [1, null] })).toBe('{"a": [1, null], "b": "x"}');
  });

  it('prints JSON with big integers exact', () => {
    expect(stringifyJSON({ n: 18446744073709551614n, s: new RegoSet([1]) })).toBe('{"n":18446744073709551614,"s":[1]}');
  });
});
