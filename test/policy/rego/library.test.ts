import { describe, expect, it } from 'vitest';
import { compileRego, fromJSON, toJSON } from '../../../src/index.ts';

const sets = `package t
import rego.v1
names contains n if some n in input.names
big := 12345678901234567890
small := 3
`;

describe('Rego library API (package root)', () => {
  it('returns sets as sorted arrays that JSON.stringify prints', () => {
    const p = compileRego({ 't.rego': sets });
    const v = p.entrypoint('t/names')({ names: ['b', 'a', 'b'] });
    expect(JSON.stringify(v)).toBe('["a","b"]');
    const rows = p.evaluate('x := data.t.names', { names: ['z', 'y'] });
    expect(JSON.stringify(rows[0]!.bindings)).toBe('{"x":["y","z"]}');
  });

  it('returns integers beyond 2^53 as exact decimal text and safe ones as numbers', () => {
    const p = compileRego({ 't.rego': sets });
    expect(JSON.stringify(p.evaluate('data.t')[0]!.expressions[0])).toContain('"big":"12345678901234567890"');
    expect(p.entrypoint('t/small')()).toBe(3);
  });

  it('keeps the engine values with { raw: true }', () => {
    const p = compileRego({ 't.rego': sets }, { raw: true });
    expect(p.entrypoint('t/big')()).toBe(12345678901234567890n);
    const names = compileRego({ 't.rego': sets }).entrypoint('t/names', { raw: true })({ names: ['a'] });
    expect(Array.isArray(names)).toBe(false);
  });

  it('indexes arrays with bigint inputs as with numbers (OPA nestedreferences)', () => {
    const p = compileRego({ 't.rego': 'package t\nimport rego.v1\nr := data.a[data.h[0][0]]\ns := input.a[input.i]\n' });
    const data = { a: [1n, 2n, 3n, 4n], h: [[1n, 2n]] };
    expect(p.entrypoint('t/r')(undefined, data)).toBe(2);
    expect(p.evaluate('data.t.s', { a: ['x', 'y'], i: 1n })[0]!.expressions[0]).toBe('y');
  });

  it('exports toJSON and fromJSON for boundary conversions', () => {
    expect(toJSON(fromJSON({ n: 5n, big: 2n ** 70n }))).toEqual({ n: 5, big: '1180591620717411303424' });
  });
});
