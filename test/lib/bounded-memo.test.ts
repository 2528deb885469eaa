import { describe, expect, it } from 'vitest';
import { boundedMemo } from '../../src/lib/bounded-memo.ts';

describe('boundedMemo', () => {
  it('computes a key once and answers the same value after', () => {
    const calls: string[] = [];
    const upper = boundedMemo(10, (k: string) => {
      calls.push(k);
      return { value: k.toUpperCase() };
    });
    const first = upper('a');
    expect(upper('a')).toBe(first);
    expect(upper('b').value).toBe('B');
    expect(calls).toEqual(['a', 'b']);
  });

  it('never holds more than max keys: past it, what was kept is computed again', () => {
    const calls: number[] = [];
    const square = boundedMemo(2, (n: number) => {
      calls.push(n);
      return n * n;
    });
    square(1);
    square(2);
    square(3); // the third key empties the cache first
    expect(square(3)).toBe(9);
    expect(square(1)).toBe(1);
    expect(calls).toEqual([1, 2, 3, 1]);
  });
});
