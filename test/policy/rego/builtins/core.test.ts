import { describe, expect, it } from 'vitest';
import { RegoSet } from '../../../../src/policy/rego/value.ts';
import { call, callError } from './helpers.ts';

describe('operators', () => {
  it('adds, subtracts and multiplies with exact big integers', () => {
    expect(call('plus', 49649733057, 1)).toBe(49649733058);
    expect(call('plus', 9223372036854775807n, 1)).toBe(9223372036854775808n);
    expect(call('minus', 1, 3)).toBe(-2);
    expect(call('mul', 3, 4)).toBe(12);
  });

  it('reports division and modulo errors with OPA messages', () => {
    expect(callError('div', 1, 0)).toEqual({ code: 'eval_builtin_error', message: 'div: divide by zero' });
    expect(callError('rem', 7, 0).message).toBe('rem: modulo by zero');
    expect(callError('rem', 1.1, 1).message).toBe('rem: modulo on floating-point number');
    expect(call('rem', 7, 4)).toBe(3);
    expect(call('rem', -7, 4)).toBe(-3);
  });

  it('raises a type error for a non-number operand', () => {
    expect(callError('plus', 1, 'a')).toEqual({ code: 'eval_type_error', message: 'plus: operand 2 must be number but got string' });
  });

  it('computes set difference, intersection and union', () => {
    const a = new RegoSet([1, 2, 3]);
    const b = new RegoSet([2, 3, 4]);
    expect((call('minus', a, b) as RegoSet).values()).toEqual([1]);
    expect((call('and', a, b) as RegoSet).values()).toEqual([2, 3]);
    expect((call('or', a, b) as RegoSet).values()).toEqual([1, 2, 3, 4]);
  });

  it('compares across types in OPA order', () => {
    expect(call('lt', null, false)).toBe(true);
    expect(call('gt', 'a', 100)).toBe(true);
    expect(call('equal', 1, 1.0)).toBe(true);
    expect(call('neq', [1], [1])).toBe(false);
  });

  it('tests membership in arrays, sets and object values but not strings', () => {
    expect(call('internal.member_2', 2, [1, 2])).toBe(true);
    expect(call('internal.member_2', 'x', new RegoSet(['y']))).toBe(false);
    expect(call('internal.member_2', 'v', { k: 'v' })).toBe(true);
    expect(call('internal.member_2', 'a', 'abc')).toBe(false);
    expect(call('internal.member_3', 'k', 'v', { k: 'v' })).toBe(true);
    expect(call('internal.member_3', 1, 'b', ['a', 'b'])).toBe(true);
    expect(call('internal.member_3', 0, 'b', ['a', 'b'])).toBe(false);
    expect(call('internal.member_3', 'x', 'x', new RegoSet(['x']))).toBe(true);
    expect(call('internal.member_3', 'x', 'y', new RegoSet(['x']))).toBe(false);
  });
});

describe('numbers', () => {
  it('rounds halves away from zero like Go', () => {
    expect(call('round', 2.5)).toBe(3);
    expect(call('round', -2.5)).toBe(-3);
    expect(call('ceil', 1.2)).toBe(2);
    expect(call('floor', -1.2)).toBe(-2);
    expect(call('abs', -10)).toBe(10);
  });

  it('builds ranges in both directions and rejects bad steps', () => {
    expect(call('numbers.range', 1, 3)).toEqual([1, 2, 3]);
    expect(call('numbers.range', 3, 1)).toEqual([3, 2, 1]);
    expect(call('numbers.range_step', 0, 10, 5)).toEqual([0, 5, 10]);
    expect(callError('numbers.range_step', 0, 10, -2).message).toBe('numbers.range_step: step must be a positive integer');
    expect(callError('numbers.range', 1.5, 3).message).toBe('numbers.range: operand 1 must be integer number but got floating-point number');
    expect(callError('numbers.range', 0, 1e12).message).toContain('exceeds the limit');
  });

  it('shifts and masks bits, rejecting negative shifts', () => {
    expect(call('bits.and', 12, 10)).toBe(8);
    expect(call('bits.lsh', 1, 70)).toBe(1180591620717411303424n);
    expect(call('bits.negate', 0)).toBe(-1);
    expect(callError('bits.rsh', 1, -1).message).toBe('bits.rsh: operand 2 must be an unsigned integer number but got a negative integer');
  });
});

describe('aggregates', () => {
  it('counts code points, elements and keys', () => {
    expect(call('count', 'héllo\u{1F600}')).toBe(6);
    expect(call('count', { a: 1, b: 2 })).toBe(2);
    expect(callError('count', null).message).toBe('count: operand 1 must be one of {array, object, set, string} but got null');
  });

  it('sums, multiplies, sorts and picks extremes', () => {
    expect(call('sum', [1, 2, 3.5])).toBe(6.5);
    expect(call('product', new RegoSet([2, 3]))).toBe(6);
    expect(call('max', [1, 'a', null])).toBe('a');
    expect(call('min', [])).toBeUndefined();
    expect(call('sort', ['b', 1, null])).toEqual([null, 1, 'b']);
  });
});
