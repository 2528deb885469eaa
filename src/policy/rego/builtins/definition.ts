/** The shape of a built-in function, shared by every built-in module and the evaluator. */
import type { Value } from '../value.ts';
import type { RegoType } from './types.ts';

export interface BuiltinContext {
  /** Evaluation time in nanoseconds since the epoch, fixed for one evaluation. */
  now(): bigint;
  /** Strict built-in errors (errors propagate instead of making the call undefined). */
  strict: boolean;
  /** Output sink of `print`. */
  print(text: string): void;
  /** Per-evaluation cache (e.g. parsed JWKS, compiled regexes are cached module-wide). */
  cache: Map<string, unknown>;
  /** Seed for `rand.intn` (deterministic tests). */
  seed?: number;
}

export interface BuiltinDecl {
  readonly args: readonly RegoType[];
  readonly result: RegoType;
  readonly variadic?: RegoType;
}

export interface BuiltinDefinition {
  readonly name: string;
  readonly decl: BuiltinDecl;
  /** Returns the result, or `undefined` when the call is undefined. Throws BuiltinError/BuiltinTypeError. */
  fn(args: Value[], ctx: BuiltinContext): Value | undefined;
  /** Result may differ between evaluations with equal arguments (time.now_ns, rand, uuid.rfc4122). */
  readonly nondeterministic?: boolean;
}

/** Declares a built-in; the helper keeps each module's table compact. */
export function builtin(
  name: string,
  args: readonly RegoType[],
  result: RegoType,
  fn: BuiltinDefinition['fn'],
  extra?: { variadic?: RegoType; nondeterministic?: boolean },
): BuiltinDefinition {
  const decl: BuiltinDecl = extra?.variadic ? { args, result, variadic: extra.variadic } : { args, result };
  return extra?.nondeterministic ? { name, decl, fn, nondeterministic: true } : { name, decl, fn };
}
