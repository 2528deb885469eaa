/**
 * Evaluation budgets: a time limit checked inside the evaluator's loops (iteration, `some ... in`,
 * comprehensions, function calls, `walk`) and before built-ins, whose cost is estimated from
 * their arguments (a regex over a 10 MB string, `numbers.range(1, 1e7)`) and charged before they
 * run. Checking is cheap: an operation counter, and a clock read every CHECK_EVERY units.
 *
 * Two kinds of budget:
 * - a slice (`slice: true`): a short inline run on the caller's thread; running out throws
 *   SLICE_EXHAUSTED, which is not an error of the policy: the caller re-runs the evaluation
 *   elsewhere (a worker thread) with the full budget;
 * - a full budget: running out throws RegoBudgetExceededError (`rego_evaluation_error`).
 *
 * The active budget is module state: evaluation is synchronous, so evaluations never interleave
 * on one thread; a nested `withBudget` saves and restores the outer one.
 */
import { performance } from 'node:perf_hooks';
import { RegoEvalError } from './errors.ts';
import { RegoSet, type Value } from './value.ts';

/** Units counted between clock reads. A unit is one iteration step, or one input element/char of a built-in. */
const CHECK_EVERY = 256;
/**
 * Units of work one charge may claim per ms of budget: a built-in whose estimated cost cannot fit
 * is refused before it runs (it would only be cut later, having allocated its result meanwhile).
 */
export const UNITS_PER_MS = 1_000_000;

/** The evaluation ran out of its time budget. */
export class RegoBudgetExceededError extends RegoEvalError {
  readonly budgetMs: number;
  constructor(budgetMs: number) {
    super('rego_evaluation_error', `evaluation exceeded its budget of ${budgetMs} ms`);
    this.budgetMs = budgetMs;
  }
}

/** Thrown when an inline slice runs out: the evaluation is to be re-run elsewhere with the full budget. */
export const SLICE_EXHAUSTED: Error = Object.freeze(Object.assign(Object.create(Error.prototype) as Error, { name: 'SliceExhausted', message: 'inline evaluation slice exhausted' }));

export interface Budget {
  deadline: number;
  limitMs: number;
  slice: boolean;
  /** Largest single charge accepted. */
  maxCharge: number;
  ops: number;
  nextCheck: number;
}

let active: Budget | undefined;

function exceeded(b: Budget): never {
  throw b.slice ? SLICE_EXHAUSTED : new RegoBudgetExceededError(b.limitMs);
}

function checkClock(b: Budget): void {
  b.nextCheck = b.ops + CHECK_EVERY;
  if (performance.now() > b.deadline) exceeded(b);
}

/** One unit of work (a loop iteration, a function call). Free when no budget is active. */
export function tick(): void {
  const b = active;
  if (b !== undefined && ++b.ops >= b.nextCheck) checkClock(b);
}

/** `units` of work about to be done at once (a built-in over a large input). */
export function charge(units: number): void {
  const b = active;
  if (b === undefined) return;
  if (units > b.maxCharge) exceeded(b);
  b.ops += units;
  if (b.ops >= b.nextCheck) checkClock(b);
}

/** Estimated units of a built-in call: one, plus the length of each string, array or set argument. */
export function builtinCost(args: readonly Value[]): number {
  let n = 1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (typeof a === 'string' || Array.isArray(a)) n += a.length;
    else if (a instanceof RegoSet) n += a.size;
  }
  return n;
}

/** Built-ins that run a JavaScript (backtracking) regular expression over their string arguments. */
const BACKTRACKING = new Set(['regex.match', 're_match', 'regex.find_n', 'regex.find_all_string_submatch_n', 'regex.split', 'regex.replace', 'regex.template_match', 'regex.globs_match', 'glob.match']);
/** A quantified group containing a quantifier (`(a+)+`, `(\\w+\\.)*`): backtracking can be exponential. */
const NESTED_QUANTIFIER = /\([^()]*[*+?}][^()]*\)[*+?{]/;
const nestedCache = new Map<string, boolean>();

function hasNestedQuantifier(pattern: string): boolean {
  let v = nestedCache.get(pattern);
  if (v === undefined) {
    if (nestedCache.size >= 1024) nestedCache.clear();
    v = NESTED_QUANTIFIER.test(pattern);
    nestedCache.set(pattern, v);
  }
  return v;
}

/**
 * In a slice, a built-in call that cannot be interrupted once started and whose worst case does not
 * fit the slice moves the evaluation to a worker before it starts (a regular expression: quadratic
 * in its subject when unanchored, exponential with nested quantifiers), where terminating the
 * thread bounds it. Outside a slice it costs nothing.
 */
export function checkWorstCase(name: string, args: readonly Value[]): void {
  const b = active;
  if (b === undefined || !b.slice || !BACKTRACKING.has(name)) return;
  let n = 0;
  for (let i = 1; i < args.length; i++) {
    const a = args[i];
    if (typeof a === 'string' && a.length > n) n = a.length;
  }
  const pattern = args[0];
  const worst = typeof pattern === 'string' && n >= 16 && hasNestedQuantifier(pattern) ? Number.POSITIVE_INFINITY : (n * n) / 64;
  if (worst > b.maxCharge) throw SLICE_EXHAUSTED;
}

export function isSliceExhausted(err: unknown): boolean {
  return err === SLICE_EXHAUSTED;
}

/** Whether an error is a budget signal (never to be swallowed as a built-in error). */
export function isBudgetSignal(err: unknown): boolean {
  return err === SLICE_EXHAUSTED || err instanceof RegoBudgetExceededError;
}

export interface BudgetOptions {
  /** Time limit in ms. */
  ms: number;
  /** A slice: running out throws SLICE_EXHAUSTED instead of the budget error. */
  slice?: boolean;
}

/** A budget object kept for reuse: the common case (no nesting) allocates nothing per evaluation. */
let spare: Budget | undefined;

/**
 * Starts a budget for the synchronous evaluation that follows; returns what `exitBudget` restores.
 * For hot paths that cannot afford a closure per call (withBudget is the convenient form).
 */
export function enterBudget(options: BudgetOptions): Budget | undefined {
  const prev = active;
  const b = spare ?? { deadline: 0, limitMs: 0, slice: false, maxCharge: 0, ops: 0, nextCheck: CHECK_EVERY };
  spare = undefined;
  b.deadline = performance.now() + options.ms;
  b.limitMs = options.ms;
  b.slice = options.slice ?? false;
  b.maxCharge = options.ms * UNITS_PER_MS;
  b.ops = 0;
  b.nextCheck = CHECK_EVERY;
  active = b;
  return prev;
}

/** Ends the budget enterBudget started (in a `finally`), restoring the one before it. */
export function exitBudget(prev: Budget | undefined): void {
  spare = active;
  active = prev;
}

/**
 * Runs `fn` under a budget (synchronous). Throws RegoBudgetExceededError, or SLICE_EXHAUSTED for a
 * slice, when the evaluation inside runs out.
 * @example
 * const value = withBudget({ ms: 50 }, () => run(input));
 */
export function withBudget<T>(options: BudgetOptions, fn: () => T): T {
  const prev = enterBudget(options);
  try {
    return fn();
  } finally {
    exitBudget(prev);
  }
}
