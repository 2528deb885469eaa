/**
 * `opa test` semantics: every rule named `test_*` is a test; it passes when it is defined and
 * not false. Pure core over a compiled policy; the CLI prints the report.
 */
import { RegoError } from './errors.ts';
import type { CompiledPolicy } from './policy.ts';
import type { Value } from './value.ts';

export interface TestResult {
  name: string;
  status: 'PASS' | 'FAIL' | 'ERROR';
  durationMs: number;
  error?: string;
  output: string[];
}

export function runRegoTests(policy: CompiledPolicy, options: { filter?: RegExp; input?: Value; now?: bigint } = {}): TestResult[] {
  const tests = policy.rules().filter((r) => /(^|\.)test_[^.]*$/.test(r) && (!options.filter || options.filter.test(r)));
  return tests.map((name) => {
    const output: string[] = [];
    const start = performance.now();
    try {
      const evalOptions = { print: (t: string) => output.push(t), ...(options.now !== undefined ? { now: options.now } : {}) };
      const rows = policy.evaluate(name, options.input, undefined, evalOptions);
      const value = rows[0]?.expressions[0];
      const ok = rows.length > 0 && value !== false && value !== undefined;
      return { name, status: ok ? 'PASS' : 'FAIL', durationMs: performance.now() - start, output };
    } catch (err) {
      if (!(err instanceof RegoError)) throw err;
      return { name, status: 'ERROR', durationMs: performance.now() - start, error: err.message, output };
    }
  });
}
