import { describe, expect, it } from 'vitest';
import { makeObject, RegoSet } from '../../../../src/policy/rego/value.ts';
import { call, callError } from './helpers.ts';

describe('arrays and objects', () => {
  it('slices with clamping and flattens nested arrays', () => {
    expect(call('array.slice', [1, 2, 3, 4], 1, 3)).toEqual([2, 3]);
    expect(call('array.slice', [1, 2], -5, 10)).toEqual([1, 2]);
    expect(call('array.slice', [1, 2], 2, 1)).toEqual([]);
    expect(call('array.flatten', [1, [2, [3]], []])).toEqual([1, 2, [3]]);
    expect(call('array.reverse', [1, 2])).toEqual([2, 1]);
  });

  it('gets nested paths with a default', () => {
    const o = { a: { b: [10, { c: 'x' }] } };
    expect(call('object.get', o, ['a', 'b', 1, 'c'], 'd')).toBe('x');
    expect(call('object.get', o, ['a', 'z'], 'd')).toBe('d');
    expect(call('object.get', o, [], 'd')).toEqual(o);
    expect(call('object.get', o, 'a', 'd')).toEqual(o.a);
    expect(callError('object.get', 'x', 'a', 1).message).toBe('object.get: operand 1 must be object but got string');
  });

  it('removes, filters and unions objects', () => {
    expect(call('object.remove', { a: 1, b: 2, c: 3 }, ['a', 'c'])).toEqual({ b: 2 });
    expect(call('object.filter', { a: 1, b: 2 }, new RegoSet(['b']))).toEqual({ b: 2 });
    expect(callError('object.remove', { a: 1 }, 'a').message).toBe('object.remove: operand 2 must be one of {object, set, array} but got string');
    expect(call('object.union', { a: { b: 1, c: 2 } }, { a: { b: 3 }, d: 4 })).toEqual({ a: { b: 3, c: 2 }, d: 4 });
    expect(call('object.union_n', [{ a: 1 }, { a: 2, b: 1 }])).toEqual({ a: 2, b: 1 });
    const keys = call('object.keys', makeObject([[1, 'x'], ['y', 2]])) as RegoSet;
    expect(keys.values()).toEqual([1, 'y']);
  });

  it('decides subsets for objects, sets and contiguous arrays', () => {
    expect(call('object.subset', { a: { b: 1, c: 2 }, d: 3 }, { a: { b: 1 } })).toBe(true);
    expect(call('object.subset', { a: 1 }, { a: 2 })).toBe(false);
    expect(call('object.subset', [1, 2, 3, 4], [2, 3])).toBe(true);
    expect(call('object.subset', [1, 2, 3, 4], [2, 4])).toBe(false);
    expect(call('object.subset', [1, 2, 3], new RegoSet([3, 1]))).toBe(true);
  });

  it('intersects and unites sets of sets', () => {
    const s = new RegoSet([new RegoSet([1, 2]), new RegoSet([2, 3])]);
    expect((call('intersection', s) as RegoSet).values()).toEqual([2]);
    expect((call('union', s) as RegoSet).values()).toEqual([1, 2, 3]);
  });

  it('filters and removes JSON paths', () => {
    const doc = { a: { b: { c: 7, d: 8 } }, e: 9 };
    expect(call('json.filter', doc, new RegoSet(['a/b/c', 'e']))).toEqual({ a: { b: { c: 7 } }, e: 9 });
    expect(call('json.filter', { a: [{ b: 7, c: 8 }, { d: 9 }] }, new RegoSet(['a/0/b', 'a/1']))).toEqual({ a: [{ b: 7 }, { d: 9 }] });
    expect(call('json.remove', doc, ['a/b/c', 'e'])).toEqual({ a: { b: { d: 8 } } });
    expect(call('json.remove', doc, [['a', 'b']])).toEqual({ a: {}, e: 9 });
    expect(callError('json.remove', doc, [1]).message).toBe(
      'json.remove: operand 2 must be one of {set, array} containing string paths or array of path segments but got number',
    );
  });

  it('applies JSON patches, including to sets, and fails on bad paths', () => {
    expect(call('json.patch', { a: [1, 2] }, [{ op: 'add', path: '/a/-', value: 3 }, { op: 'replace', path: '/a/0', value: 0 }])).toEqual({
      a: [0, 2, 3],
    });
    expect((call('json.patch', { foo: new RegoSet(['a', 'b']) }, [{ op: 'remove', path: 'foo/b' }]) as { foo: RegoSet }).foo.values()).toEqual(['a']);
    expect(call('json.patch', { a: 1 }, [{ op: 'move', from: '/a', path: '/b' }])).toEqual({ b: 1 });
    expect(callError('json.patch', [1, 2, 3], [{ op: 'add', path: '1.2', value: 'x' }]).code).toBe('eval_builtin_error');
    expect(callError('json.patch', { a: 1 }, [{ op: 'test', path: '/a', value: 2 }]).code).toBe('eval_builtin_error');
  });
});

describe('types and casts', () => {
  it('answers type tests with true or false', () => {
    expect(call('is_number', 1)).toBe(true);
    expect(call('is_number', null)).toBe(false);
    expect(call('is_set', new RegoSet())).toBe(true);
    expect(call('type_name', {})).toBe('object');
  });

  it('converts to numbers and rejects Inf/NaN as type errors', () => {
    expect(call('to_number', '-42.0')).toBe(-42);
    expect(call('to_number', true)).toBe(1);
    expect(call('to_number', null)).toBe(0);
    expect(call('to_number', '18446744073709551614')).toBe(18446744073709551614n);
    expect(callError('to_number', 'broken').message).toContain('invalid syntax');
    expect(callError('to_number', 'iNf').code).toBe('eval_type_error');
  });
});

describe('encodings', () => {
  it('round-trips base64, base64url and hex with Go strictness', () => {
    expect(call('base64.encode', 'hello?>')).toBe('aGVsbG8/Pg==');
    expect(call('base64.decode', 'aGVsbG8=')).toBe('hello');
    expect(callError('base64.decode', 'aGVsbG8').message).toContain('illegal base64');
    expect(call('base64.is_valid', 'aGVsbG8=')).toBe(true);
    expect(call('base64.is_valid', 'not base64')).toBe(false);
    expect(call('base64url.encode', 'hello?>')).toBe('aGVsbG8_Pg==');
    expect(call('base64url.encode_no_pad', 'hello?>')).toBe('aGVsbG8_Pg');
    expect(call('base64url.decode', 'aGVsbG8_Pg')).toBe('hello?>');
    expect(call('hex.encode', 'hi')).toBe('6869');
    expect(callError('hex.decode', '6g').message).toBe("hex.decode: encoding/hex: invalid byte: U+0067 'g'");
  });

  it('escapes URL queries like Go', () => {
    expect(call('urlquery.encode', 'a b&c=d/é')).toBe('a+b%26c%3Dd%2F%C3%A9');
    expect(call('urlquery.decode', 'a+b%26c')).toBe('a b&c');
    expect(call('urlquery.encode_object', { b: ['2', '1'], a: 'x y' })).toBe('a=x+y&b=2&b=1');
    expect(call('urlquery.decode_object', 'a=1&a=2&b=')).toEqual({ a: ['1', '2'], b: [''] });
  });

  it('marshals JSON as Go does: sorted keys, HTML escaping, sets as arrays, big integers exact', () => {
    expect(call('json.marshal', { b: new RegoSet([2, 1]), a: '<&>' })).toBe('{"a":"\\u003c\\u0026\\u003e","b":[1,2]}');
    expect(call('json.marshal', 18446744073709551614n)).toBe('18446744073709551614');
    expect(call('json.marshal_with_options', { foo: 'bar', bar: 'baz' }, { prefix: 'J ' })).toBe('J {\nJ \t"bar": "baz",\nJ \t"foo": "bar"\nJ }');
    expect(call('json.marshal_with_options', [1], { pretty: false, indent: 'x' })).toBe('[1]');
    expect(callError('json.marshal_with_options', [1], { include_winning_lottery_numbers: true }).message).toContain(
      'object contained unknown key "include_winning_lottery_numbers"',
    );
  });

  it('unmarshals and validates JSON and YAML', () => {
    expect(call('json.unmarshal', '{"a":[1,"x"]}')).toEqual({ a: [1, 'x'] });
    expect(callError('json.unmarshal', '{').code).toBe('eval_builtin_error');
    expect(call('json.is_valid', '{')).toBe(false);
    expect(call('json.is_valid', 1)).toBe(false);
    expect(call('yaml.unmarshal', 'a:\n  - 1\n  - b\n')).toEqual({ a: [1, 'b'] });
    expect(call('yaml.is_valid', 'foo:\n - baz: {')).toBe(false);
    expect(call('yaml.marshal', { b: 1, a: ['x'] })).toBe('a:\n- x\nb: 1\n');
  });
});
