import { BUILTINS, type BuiltinContext } from '../../../../src/policy/rego/builtins/index.ts';
import type { Value } from '../../../../src/policy/rego/value.ts';

export const NOW_NS = 1_700_000_000_000_000_000n;

export function context(over: Partial<BuiltinContext> = {}): BuiltinContext {
  return { now: () => NOW_NS, strict: true, print: () => {}, cache: new Map(), ...over };
}

/** Calls a built-in by name the way the evaluator does. */
export function call(name: string, ...args: Value[]): Value | undefined {
  const def = BUILTINS.get(name);
  if (!def) throw new Error(`no built-in ${name}`);
  return def.fn(args, context());
}

/** The error a call throws (fails the test when it does not throw). */
export function callError(name: string, ...args: Value[]): { code: string; message: string } {
  try {
    call(name, ...args);
  } catch (err) {
    return { code: (err as { code?: string }).code ?? 'none', message: (err as Error).message };
  }
  throw new Error(`${name} did not throw`);
}
