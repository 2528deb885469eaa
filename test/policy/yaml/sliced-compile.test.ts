import { describe, expect, it } from 'vitest';
import { compileAuthorizationPolicies, compileAuthorizationPoliciesSliced } from '../../../src/policy/yaml/index.ts';
import { facts, policyDoc } from './helpers.ts';

/** Per-service ALLOWs plus a DENY on DELETE last, so ordinals matter. */
function docs(n: number) {
  const out = Array.from({ length: n }, (_, i) => policyDoc({ name: `allow-${i}`, selector: { matchLabels: { app: `svc-${i}` } }, rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] }, i));
  out.push(policyDoc({ name: 'deny-delete', action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }, n));
  return out;
}

describe('compileAuthorizationPoliciesSliced', () => {
  it('lets the event loop run while compiling thousands of policies', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    try {
      await compileAuthorizationPoliciesSliced(docs(3_000), 'meshward-system', 0);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });

  it('compiles the same decisions as the one-go compile (allow and deny)', async () => {
    const input = docs(500);
    const sliced = await compileAuthorizationPoliciesSliced(input, 'meshward-system', 0);
    const whole = compileAuthorizationPolicies(input, 'meshward-system');
    const workload = { namespace: 'shop', labels: { app: 'svc-42' } };
    for (const f of [facts({ path: '/api/x' }), facts({ path: '/api/x', method: 'DELETE' }), facts({ path: '/other' })]) {
      expect(sliced.evaluate(workload, f, undefined).allowed).toBe(whole.evaluate(workload, f, undefined).allowed);
    }
    expect(sliced.evaluate(workload, facts({ path: '/api/x' }), undefined).allowed).toBe(true);
    expect(sliced.evaluate(workload, facts({ path: '/api/x', method: 'DELETE' }), undefined).allowed).toBe(false);
    expect(sliced.policies.map((p) => p.ordinal)).toEqual(whole.policies.map((p) => p.ordinal));
  });
});
