import { describe, expect, it } from 'vitest';
import { type ArgSpec, type Cond, compileConds, evalConds } from '../../../src/policy/rego/conds.ts';
import { EvalCtx, type Frame, pathAccessor } from '../../../src/policy/rego/runtime.ts';
import type { Value } from '../../../src/policy/rego/value.ts';

const input = (path: string[]): ArgSpec => ({ k: 1, path, get: pathAccessor(path) });
const konst = (v: Value): ArgSpec => ({ k: 0, v });
const cmp = (op: number, a: ArgSpec, b: ArgSpec): Cond => ({ k: 0, op, a, b, name: 'equal', mocked: () => undefined });

describe('generated condition code', () => {
  const inputs: Value[] = [
    { n: 1, s: 'a', b: true, big: 18446744073709551615n, f: 1.5, nested: { x: null } },
    { n: 1.0, s: 'b', b: false, big: 1, f: 2, nested: {} },
    { s: 'ä', n: '1' },
    {},
  ];
  const conds: Cond[][] = [
    [cmp(0, input(['n']), konst(1))],
    [cmp(1, input(['n']), konst(1))],
    [cmp(0, input(['s']), konst('a'))],
    [cmp(1, input(['s']), konst('a'))],
    [cmp(2, input(['s']), konst('b'))],
    [cmp(3, input(['f']), konst(1.5))],
    [cmp(4, input(['big']), konst(1))],
    [cmp(5, input(['n']), konst(1))],
    [cmp(0, input(['b']), konst(true))],
    [cmp(0, input(['nested', 'x']), konst(null))],
    [cmp(0, input(['big']), konst(18446744073709551615n))],
    [{ k: 3, conds: [cmp(0, input(['s']), konst('a'))] }],
    [cmp(0, input(['n']), konst(1)), { k: 2, test: (f) => f.c.input !== undefined }],
  ];
  it('decides exactly as the condition interpreter', () => {
    for (const c of conds) {
      const generated = compileConds(c);
      for (const x of inputs) {
        const f: Frame = { s: [], c: new EvalCtx(x, {}, undefined) };
        expect(generated(f), JSON.stringify(c.map((k) => k.k)) + ' on ' + String(Object.keys(x as object))).toBe(evalConds(c, f));
      }
    }
  });

  it('falls back to the interpreter while a with-mock is active', () => {
    const mocked: Cond = { k: 0, op: 0, a: konst(1), b: konst(2), name: 'equal', mocked: () => true };
    const c = new EvalCtx({}, {}, undefined).fork({ mocks: new Map([['equal', { kind: 'value', value: true }]]) });
    expect(compileConds([mocked])({ s: [], c })).toBe(true);
    expect(compileConds([mocked])({ s: [], c: new EvalCtx({}, {}, undefined) })).toBe(false);
  });
});
