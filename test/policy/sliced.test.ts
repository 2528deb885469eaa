/**
 * A Rego policy that keeps running out of its inline slice goes straight to a worker for a while
 * (a slow policy hit at a high rate costs the event loop nothing more), then is tried inline again.
 * Observed without timing: an inline evaluation answers synchronously, a worker's with a promise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyBudgetExceededError } from '../../src/policy/errors.ts';
import { EvaluationPool, pooledPolicy } from '../../src/policy/pool/index.ts';
import { compileRego, fromJSON, toJSON } from '../../src/policy/rego/index.ts';
import { SlicedPolicy } from '../../src/policy/sliced.ts';

const MODULE = `package envoy.authz
import rego.v1
default allow := false
allow if { not input.slow; input.role == "admin" }
allow if { input.slow; count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000)]) > 0 }
`;

describe('a Rego policy behind an inline slice', () => {
  const pool = new EvaluationPool({ size: 1 });
  const run = compileRego({ 'p.rego': MODULE }).entrypoint('envoy/authz/allow');
  const inline = { evaluate: (input: unknown) => { const v = run(fromJSON(input)); return v === undefined ? undefined : toJSON(v); } };
  const source = pooledPolicy('ns/p', { kind: 'rego', modules: { 'p.rego': MODULE }, entrypoint: 'envoy/authz/allow' });
  beforeAll(async () => {
    await pool.ready();
  }, 60_000);
  afterAll(async () => {
    await pool.close();
  });

  it('answers fast inputs inline, sends a policy that keeps running out of its slice to the worker for a while, then tries inline again', async () => {
    const policy = new SlicedPolicy(inline, pool, source, 50, { sliceMs: 1, strikes: 3, offloadMs: 300 });
    expect(policy.evaluate({ role: 'admin' })).toBe(true);
    for (let i = 0; i < 3; i++) {
      const slow = policy.evaluate({ slow: true });
      expect(slow).toBeInstanceOf(Promise);
      await expect(slow).rejects.toBeInstanceOf(PolicyBudgetExceededError);
    }
    expect(policy.inlineFirst).toBe(false);
    // Offloaded: even a fast input goes to the worker, and still gets its decision.
    const offloaded = policy.evaluate({ role: 'admin' });
    expect(offloaded).toBeInstanceOf(Promise);
    expect(await offloaded).toBe(true);
    await expect.poll(() => policy.inlineFirst, { timeout: 5000 }).toBe(true);
    expect(policy.evaluate({ role: 'admin' })).toBe(true);
    expect(policy.evaluate({ role: 'dev' })).toBe(false);
  });
});
