/**
 * Evaluation budgets in the Rego engine: loops, comprehensions, function calls and built-ins over
 * large inputs stop with rego_evaluation_error once the budget is spent; a slice stops with the
 * slice signal instead (the caller moves the evaluation to a worker). Timings are bounded with a
 * generous margin (a loaded CI box), never tight.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { compileRego, isSliceExhausted, RegoBudgetExceededError, type RegoError, withBudget } from '../../../src/policy/rego/index.ts';

const BUDGET_MS = 50;
/** Allowed past the budget: scheduling on a shared box, not work done after the budget ran out. */
const MARGIN_MS = 250;

const SLOW = {
  // A comprehension over a range, each element calling a function that loops again.
  comprehension: `package t
import rego.v1
allow if count([x | some i in numbers.range(1, 3000000); x := i * 2; x > 0]) > 0
`,
  functions: `package t
import rego.v1
inner(n) := count([j | some j in numbers.range(1, n); j % 7 == 0])
allow if sum([inner(i) | some i in numbers.range(1, 100000)]) > 0
`,
  regex: `package t
import rego.v1
allow if count([i | some i in numbers.range(1, 100000); regex.match("^x*z", input.big)]) > 0
`,
  rangeWalk: `package t
import rego.v1
allow if {
  some i in numbers.range(1, 5000000)
  i < 0
}
`,
  everyWalk: `package t
import rego.v1
allow if every i in numbers.range(1, 5000000) { i > 0; sprintf("%d", [i]) != "" }
`,
};

function runWithBudget(src: string, input: unknown, ms: number, slice = false): { error: unknown; elapsed: number } {
  const run = compileRego({ 't.rego': src }).entrypoint('t/allow');
  const t0 = performance.now();
  try {
    withBudget({ ms, slice }, () => run(input as never));
  } catch (error) {
    return { error, elapsed: performance.now() - t0 };
  }
  return { error: undefined, elapsed: performance.now() - t0 };
}

describe('Rego evaluation budget', () => {
  const input = { big: 'x'.repeat(200_000) };
  for (const [name, src] of Object.entries(SLOW)) {
    it(`stops a slow policy (${name}) with rego_evaluation_error within its budget`, () => {
      const { error, elapsed } = runWithBudget(src, input, BUDGET_MS);
      expect(error).toBeInstanceOf(RegoBudgetExceededError);
      expect((error as RegoError).code).toBe('rego_evaluation_error');
      expect((error as RegoError).message).toMatch(/exceeded its budget of 50 ms/);
      expect(elapsed).toBeLessThan(BUDGET_MS + MARGIN_MS);
    });
  }

  it('refuses a built-in whose input cannot fit in the budget before running it (a range of ten million numbers)', () => {
    const src = 'package t\nimport rego.v1\nallow if count(numbers.range(1, 10000000)) > 0\n';
    const { error, elapsed } = runWithBudget(src, {}, 5);
    expect(error).toBeInstanceOf(RegoBudgetExceededError);
    expect(elapsed).toBeLessThan(5 + MARGIN_MS);
  });

  it('stops a slice with the slice signal, not the budget error', () => {
    const { error } = runWithBudget(SLOW.comprehension, {}, 1, true);
    expect(isSliceExhausted(error)).toBe(true);
  });

  it('keeps the budget signal out of non-strict built-in error handling (no silent undefined)', () => {
    // regex.match over a string larger than a slice can afford: refused as a slice, not "undefined".
    const src = 'package t\nimport rego.v1\ndefault allow := false\nallow if regex.match("a", input.big)\n';
    const { error } = runWithBudget(src, { big: 'b'.repeat(2_000_000) }, 1, true);
    expect(isSliceExhausted(error)).toBe(true);
  });

  it('moves a regular expression whose worst case does not fit a slice out of the slice before it starts', () => {
    // Nested quantifiers on a 40-character subject: exponential backtracking if it ran here.
    const src = 'package t\nimport rego.v1\ndefault allow := false\nallow if regex.match("^(a+)+$", input.s)\n';
    const t0 = performance.now();
    const { error } = runWithBudget(src, { s: `${'a'.repeat(40)}b` }, 1, true);
    expect(isSliceExhausted(error)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(MARGIN_MS);
    // The same pattern on a short subject stays inline.
    expect(runWithBudget(src, { s: 'aaa' }, 1, true).error).toBeUndefined();
  });

  it('lets a fast policy finish under a budget with the same result as without one', () => {
    const src = 'package t\nimport rego.v1\ndefault allow := false\nallow if { some x in input.roles; x == "admin" }\n';
    const run = compileRego({ 't.rego': src }).entrypoint('t/allow');
    expect(withBudget({ ms: BUDGET_MS }, () => run({ roles: ['dev', 'admin'] }))).toBe(true);
    expect(withBudget({ ms: 1, slice: true }, () => run({ roles: ['dev'] }))).toBe(false);
  });

  it('costs nothing outside a budget: the same slow policy runs to completion without one', () => {
    const src = 'package t\nimport rego.v1\nallow if count([i | some i in numbers.range(1, 20000)]) == 20000\n';
    expect(compileRego({ 't.rego': src }).entrypoint('t/allow')({})).toBe(true);
  });
});
