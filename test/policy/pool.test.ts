/**
 * The evaluation pool: Rego that stops itself at its budget keeps its worker; a built-in call that
 * cannot be interrupted (catastrophic regular expression backtracking) is answered with the budget
 * error at budget + grace and its worker replaced; the pool keeps answering afterwards. Timings
 * are bounded with generous margins, never tight.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyBudgetExceededError } from '../../src/policy/errors.ts';
import { EvaluationPool, pooledPolicy } from '../../src/policy/pool/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const rego = (id: string, body: string) => pooledPolicy(id, { kind: 'rego', modules: { 'p.rego': `package envoy.authz\nimport rego.v1\ndefault allow := false\n${body}\n` }, entrypoint: 'envoy/authz/allow' });

const FAST = rego('ns/fast', 'allow if input.role == "admin"');
const LOOP = rego('ns/loop', 'allow if { some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); i * j < 0 }');
// Exponential backtracking in one regex.match call: nothing inside the call can check the budget.
const REGEX = rego('ns/regex', 'allow if regex.match("^(a+)+$", input.s)');

describe('evaluation pool', () => {
  const pool = new EvaluationPool({ size: 1, regoGraceMs: 50, killAfterMs: 200 });
  beforeAll(async () => {
    await pool.ready();
  }, 60_000);
  afterAll(async () => {
    await pool.close();
  });

  it('evaluates a policy in a worker: allow and deny', async () => {
    expect(await pool.evaluate(FAST, { role: 'admin' }, undefined, 50)).toBe(true);
    expect(await pool.evaluate(FAST, { role: 'dev' }, undefined, 50)).toBe(false);
  });

  it('stops a Rego loop at its budget inside the worker, without terminating it', async () => {
    const err = await pool.evaluate(LOOP, {}, undefined, 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyBudgetExceededError);
    expect((err as Error).message).toMatch(/ns\/loop: evaluation exceeded its budget of 50 ms/);
    expect(pool.terminated).toBe(0);
    expect(await pool.evaluate(FAST, { role: 'admin' }, undefined, 50)).toBe(true);
  });

  it('answers a built-in call that cannot be interrupted at budget + grace, then replaces its worker', async () => {
    const t0 = performance.now();
    const err = await pool.evaluate(REGEX, { s: `${'a'.repeat(40)}b` }, undefined, 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyBudgetExceededError);
    expect((err as Error).message).toMatch(/ns\/regex: evaluation exceeded its budget of 50 ms \(its worker did not answer in time\)/);
    expect(performance.now() - t0).toBeLessThan(50 + 50 + 500);
    await expect.poll(() => pool.terminated, { timeout: 10_000 }).toBe(1);
    await pool.ready();
    expect(await pool.evaluate(FAST, { role: 'admin' }, undefined, 50)).toBe(true);
  });
});

describe('evaluation pool while its workers start', () => {
  const pool = new EvaluationPool({ size: 1, queueTimeoutMs: 100 });
  afterAll(async () => {
    await pool.close();
  });

  it('does not count waiting for workers to start as saturation: an evaluation sent before they run is answered', async () => {
    // Starting a worker takes far longer than queueTimeoutMs (hundreds of ms from sources).
    expect(await pool.evaluate(FAST, { role: 'admin' }, undefined, 50)).toBe(true);
  }, 60_000);
});

describe('evaluation pool and the process', () => {
  it('does not keep a process alive once its work is done: an idle, started pool lets node exit', () => {
    const script = `
      import { EvaluationPool } from './src/policy/pool/index.ts';
      const pool = new EvaluationPool({ size: 2 });
      const keepAlive = setInterval(() => {}, 1000); // the workers are unref'd: something must wait for them
      await pool.ready();
      clearInterval(keepAlive);
      process.stdout.write('ready');`;
    const started = performance.now();
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 25_000 });
    expect(out).toBe('ready');
    // Generous: a started worker still referenced would hold the process until the timeout kills it.
    expect(performance.now() - started).toBeLessThan(20_000);
  }, 30_000);
});
