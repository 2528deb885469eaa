/**
 * Plain conditions as data. Bodies made only of tests (`input.role == "admin"`,
 * `startswith(input.path, "/api/")`, `not x`) compile to a list of conditions that one
 * top-level function evaluates. Unlike nested closures, these call sites stay monomorphic in V8
 * when a policy has thousands of rules, which is what keeps large rule sets fast.
 */
import type { BuiltinDefinition } from './builtins/index.ts';
import type { Loc } from './ast.ts';
import type { Frame, Val } from './runtime.ts';
import { type Value, compare, equals } from './value.ts';

/** How an argument is obtained: constant, input path, frame slot, or a closure (anything else). */
export type ArgSpec =
  | { k: 0; v: Value }
  | { k: 1; path: readonly string[]; get: (input: Value | undefined) => Value | undefined }
  | { k: 2; slot: number }
  | { k: 3; fn: Val };

export type Cond =
  /** Comparison: 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=; `mocked` runs when `with` replaces the operator. */
  | { k: 0; op: number; a: ArgSpec; b: ArgSpec; name: string; mocked: (f: Frame) => Value | undefined }
  /** Built-in call whose result must be defined and not false. */
  | { k: 1; def: BuiltinDefinition; name: string; args: readonly ArgSpec[]; loc: Loc; invoke: BuiltinInvoker }
  /** Any other test. */
  | { k: 2; test: (f: Frame) => boolean }
  /** Negation of a conjunction. */
  | { k: 3; conds: readonly Cond[] };

export type BuiltinInvoker = (def: BuiltinDefinition, name: string, args: Value[], f: Frame, loc: Loc) => Value | undefined;

export const COMPARISON_OPS: Record<string, number> = { equal: 0, neq: 1, lt: 2, lte: 3, gt: 4, gte: 5 };

export function argValue(s: ArgSpec, f: Frame): Value | undefined {
  switch (s.k) {
    case 0:
      return s.v;
    case 1:
      return s.get(f.c.input);
    case 2:
      return f.s[s.slot];
    case 3:
      return s.fn(f);
  }
}

export function compareOp(op: number, x: Value, y: Value): boolean {
  switch (op) {
    case 0:
      return equals(x, y);
    case 1:
      return !equals(x, y);
    case 2:
      return compare(x, y) < 0;
    case 3:
      return compare(x, y) <= 0;
    case 4:
      return compare(x, y) > 0;
    default:
      return compare(x, y) >= 0;
  }
}

function evalCond(c: Cond, f: Frame): boolean {
  switch (c.k) {
    case 0: {
      if (f.c.mocks?.has(c.name)) {
        const r = c.mocked(f);
        return r !== undefined && r !== false;
      }
      const x = argValue(c.a, f);
      if (x === undefined) return false;
      const y = argValue(c.b, f);
      return y !== undefined && compareOp(c.op, x, y);
    }
    case 1: {
      const xs: Value[] = new Array(c.args.length);
      for (let i = 0; i < c.args.length; i++) {
        const v = argValue(c.args[i]!, f);
        if (v === undefined) return false;
        xs[i] = v;
      }
      const r = c.invoke(c.def, c.name, xs, f, c.loc);
      return r !== undefined && r !== false;
    }
    case 2:
      return c.test(f);
    case 3:
      return !evalConds(c.conds, f);
  }
}

/** True when every condition holds. */
export function evalConds(conds: readonly Cond[], f: Frame): boolean {
  for (let i = 0; i < conds.length; i++) if (!evalCond(conds[i]!, f)) return false;
  return true;
}
