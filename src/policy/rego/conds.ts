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

/**
 * Compiles a conjunction into one generated JavaScript function: straight-line code whose call
 * sites (accessors, built-ins) are each monomorphic, so a policy with a thousand rules does not
 * pay for shared, megamorphic dispatch. While a `with` mock is active, the interpreter above runs
 * instead (it honours mocks of comparison operators).
 */
export function compileConds(conds: readonly Cond[]): (f: Frame) => boolean {
  const refs: unknown[] = [];
  const ref = (x: unknown): string => {
    refs.push(x);
    return `R[${refs.length - 1}]`;
  };
  const arg = (s: ArgSpec): string => {
    switch (s.k) {
      case 0:
        return ref(s.v);
      case 1:
        return `${ref(s.get)}(f.c.input)`;
      case 2:
        return `f.s[${s.slot}]`;
      case 3:
        return `${ref(s.fn)}(f)`;
    }
  };
  let n = 0;
  const v = (): string => `v${n++}`;
  const cond = (c: Cond): string => {
    switch (c.k) {
      case 0: {
        const x = v();
        const y = v();
        let test: string;
        const constB = c.b.k === 0 ? c.b.v : undefined;
        if ((c.op === 0 || c.op === 1) && (typeof constB === 'string' || typeof constB === 'boolean' || constB === null)) {
          test = `${x} === ${y}`;
        } else if (c.op === 0 || c.op === 1) test = `EQ(${x}, ${y})`;
        else test = `CMP(${x}, ${y}) ${['<', '<=', '>', '>='][c.op - 2]} 0`;
        if (c.op === 1) test = `!(${test})`;
        return `{ const ${x} = ${arg(c.a)}; if (${x} === undefined) return false; const ${y} = ${arg(c.b)}; if (${y} === undefined || !(${test})) return false; }`;
      }
      case 1: {
        const names = c.args.map(() => v());
        const loads = c.args.map((a, i) => `const ${names[i]} = ${arg(a)}; if (${names[i]} === undefined) return false;`).join(' ');
        const r = v();
        return `{ ${loads} const ${r} = ${ref(c.invoke)}(${ref(c.def)}, ${JSON.stringify(c.name)}, [${names.join(', ')}], f, ${ref(c.loc)}); if (${r} === undefined || ${r} === false) return false; }`;
      }
      case 2:
        return `if (!${ref(c.test)}(f)) return false;`;
      case 3:
        return `if (${ref(compileConds(c.conds))}(f)) return false;`;
    }
  };
  const body = conds.map(cond).join('\n');
  const slow = (f: Frame) => evalConds(conds, f);
  const make = new Function('R', 'EQ', 'CMP', 'SLOW', `return function conds(f) {\nif (f.c.mocks !== undefined) return SLOW(f);\n${body}\nreturn true;\n};`) as (
    r: unknown[],
    eq: typeof equals,
    cmp: typeof compare,
    slow: (f: Frame) => boolean,
  ) => (f: Frame) => boolean;
  return make(refs, equals, compare, slow);
}
