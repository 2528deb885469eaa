/** Istio evaluation order, scope, dry-run, per-route selection and compile errors. */
import { describe, expect, it } from 'vitest';
import { compileAuthorizationPolicies, PolicyCompileError } from '../../../src/policy/index.ts';
import { compileAuthorizationPolicies as compileYaml } from '../../../src/policy/yaml/index.ts';
import { auth, facts, type PolicyInput, policyDoc } from './helpers.ts';

const ROOT = 'meshward-system';
const orders = { namespace: 'shop', labels: { app: 'orders' } };
const compile = (...ps: PolicyInput[]) => compileYaml(ps.map((p, i) => policyDoc(p, i)), ROOT);

describe('evaluation order', () => {
  it('allows when no policy applies to the workload', () => {
    const v = compile().evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(true);
  });

  it('denies every request to a workload with an ALLOW policy without rules (allow-nothing)', () => {
    const v = compile({ selector: { matchLabels: { app: 'orders' } } }).evaluate(orders, facts(), undefined);
    expect(v).toMatchObject({ allowed: false, reason: 'no ALLOW policy matched' });
  });

  it('never matches a DENY policy without rules', () => {
    expect(compile({ action: 'DENY' }).evaluate(orders, facts(), undefined).allowed).toBe(true);
  });

  it('denies when a DENY matches even though an ALLOW matches too', () => {
    const v = compile({ name: 'allow-all', rules: [{}] }, { name: 'deny-get', action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] })
      .evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(false);
    expect(v.decidedBy?.policy.id).toBe('shop/deny-get');
  });

  it('allows when the DENY does not match and an ALLOW does', () => {
    const v = compile({ name: 'allow-all', rules: [{}] }, { name: 'deny-post', action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] })
      .evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(true);
    expect(v.decidedBy?.policy.id).toBe('shop/allow-all');
  });

  it('denies when ALLOW policies exist but none matches', () => {
    const v = compile({ rules: [{ to: [{ operation: { paths: ['/other'] } }] }] }).evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(false);
  });

  it('reports matching AUDIT policies without changing the outcome', () => {
    const set = compile({ name: 'audit-get', action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['GET'] } }] }], selector: { matchLabels: { app: 'orders' } } });
    const v = set.evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(true);
    expect(v.audit.map((m) => m.policy.id)).toEqual(['shop/audit-get']);
    expect(set.evaluate(orders, facts({ method: 'POST' }), undefined).audit).toEqual([]);
  });

  it('returns matching CUSTOM policies for their provider to decide', () => {
    const v = compile({ name: 'ext', action: 'CUSTOM', provider: { name: 'payments-rego' }, rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] })
      .evaluate(orders, facts(), undefined);
    expect(v.custom.map((m) => [m.policy.id, m.policy.provider])).toEqual([['shop/ext', 'payments-rego']]);
    expect(v.allowed).toBe(true);
  });
});

describe('scope', () => {
  it('applies a root-namespace policy to every namespace', () => {
    const set = compile({ namespace: ROOT, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/debug/*'] } }] }] });
    expect(set.evaluate({ namespace: 'shop', labels: {} }, facts({ path: '/debug/pprof' }), undefined).allowed).toBe(false);
    expect(set.evaluate({ namespace: 'bank', labels: {} }, facts({ path: '/debug/pprof' }), undefined).allowed).toBe(false);
    expect(set.evaluate({ namespace: 'bank', labels: {} }, facts({ path: '/api' }), undefined).allowed).toBe(true);
  });

  it('applies a namespace policy only to its own namespace', () => {
    const set = compile({ namespace: 'shop', action: 'DENY', rules: [{}] });
    expect(set.evaluate({ namespace: 'shop', labels: {} }, facts(), undefined).allowed).toBe(false);
    expect(set.evaluate({ namespace: 'bank', labels: {} }, facts(), undefined).allowed).toBe(true);
  });

  it('narrows by selector', () => {
    const set = compile({ selector: { matchLabels: { app: 'payments' } }, action: 'DENY', rules: [{}] });
    expect(set.evaluate({ namespace: 'shop', labels: { app: 'payments' } }, facts(), undefined).allowed).toBe(false);
    expect(set.evaluate({ namespace: 'shop', labels: { app: 'orders' } }, facts(), undefined).allowed).toBe(true);
  });

  it('narrows a mesh-wide policy by selector across namespaces', () => {
    const set = compile({ namespace: ROOT, selector: { matchLabels: { tier: 'db' } }, action: 'DENY', rules: [{}] });
    expect(set.evaluate({ namespace: 'bank', labels: { tier: 'db' } }, facts(), undefined).allowed).toBe(false);
    expect(set.evaluate({ namespace: 'bank', labels: { tier: 'web' } }, facts(), undefined).allowed).toBe(true);
  });

  it('applies only mesh-wide policies when the workload namespace is unknown', () => {
    const set = compile({ namespace: 'shop', action: 'DENY', rules: [{}] }, { namespace: ROOT, action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] });
    expect(set.evaluate({ labels: {} }, facts(), undefined).allowed).toBe(true);
    expect(set.evaluate({ labels: {} }, facts({ method: 'DELETE' }), undefined).allowed).toBe(false);
  });
});

describe('per-route selection (contextExtensions)', () => {
  const set = compile({ name: 'orders-api-only', contextExtensions: { route: 'orders-api' }, rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/admin'] } }] }] });

  it('enforces a route policy on requests of that route', () => {
    expect(set.evaluate(orders, facts({ contextExtensions: { route: 'orders-api' } }), undefined).allowed).toBe(false);
    expect(set.evaluate(orders, facts({ contextExtensions: { route: 'orders-api' }, sourcePrincipal: 'cluster.local/ns/shop/sa/admin' }), undefined).allowed).toBe(true);
  });

  it('ignores a route policy on other routes', () => {
    expect(set.evaluate(orders, facts({ contextExtensions: { route: 'health' } }), undefined).allowed).toBe(true);
    expect(set.evaluate(orders, facts(), undefined).allowed).toBe(true);
  });
});

describe('dry-run', () => {
  it('reports a matching dry-run DENY without enforcing it', () => {
    const v = compile({ name: 'would-deny', action: 'DENY', dryRun: true, rules: [{}] }).evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(true);
    expect(v.shadowAllowed).toBe(false);
    expect(v.dryRun.map((d) => [d.policy.id, d.effect])).toEqual([['shop/would-deny', 'deny']]);
  });

  it('reports dry-run ALLOW policies that would deny a request nothing else restricts', () => {
    const v = compile({ name: 'strict', dryRun: true, rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }).evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(true);
    expect(v.shadowAllowed).toBe(false);
    expect(v.dryRun.map((d) => [d.policy.id, d.effect])).toEqual([['shop/strict', 'deny']]);
  });

  it('reports a matching dry-run ALLOW as allow and the shadow decision as allowed', () => {
    const v = compile({ name: 'strict', dryRun: true, rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }).evaluate(orders, facts(), undefined);
    expect(v.shadowAllowed).toBe(true);
    expect(v.dryRun.map((d) => d.effect)).toEqual(['allow']);
  });

  it('keeps enforcing non-dry-run policies next to dry-run ones', () => {
    const v = compile({ name: 'enforced', action: 'DENY', rules: [{}] }, { name: 'shadow', dryRun: true, rules: [{}] }).evaluate(orders, facts(), undefined);
    expect(v.allowed).toBe(false);
  });
});

describe('compile errors', () => {
  it('rejects an invalid CIDR with the policy and rule', () => {
    const fn = () => compileAuthorizationPolicies([policyDoc({ name: 'bad', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] })], ROOT);
    expect(fn).toThrow(PolicyCompileError);
    expect(fn).toThrow(/shop\/bad.*rules\[0\]\.from\[0\] ipBlocks: "10.0.0.0\/33" has an invalid prefix length/);
  });

  it('rejects {**} that is not the last operator', () => {
    expect(() => compile({ rules: [{ to: [{ operation: { paths: ['/a/{**}/b'] } }] }] })).toThrow(/\{\*\*\} must be the last operator/);
  });

  it('rejects an unknown when key (Istio would silently ignore it)', () => {
    try {
      compile({ rules: [{ when: [{ key: 'request.auth.claim[sub]', values: ['x'] }] }] });
      expect.unreachable();
    } catch (err) {
      expect((err as PolicyCompileError).code).toBe('POLICY_COMPILE_FAILED');
      expect((err as Error).message).toMatch(/unknown condition key "request.auth.claim\[sub\]"/);
    }
  });
});

describe('rule indexes', () => {
  it('finds the same decisions as evaluating every rule, over 2,000 mixed rules', () => {
    const rules = Array.from({ length: 2000 }, (_, i) => {
      switch (i % 5) {
        case 0: return { to: [{ operation: { paths: [`/svc${i}/exact`] } }] };
        case 1: return { to: [{ operation: { paths: [`/svc${i}/*`], methods: ['POST'] } }] };
        case 2: return { from: [{ source: { principals: [`cluster.local/ns/shop/sa/sa${i}`] } }] };
        case 3: return { to: [{ operation: { paths: [`/api/svc${i}/{*}/items`, `/api/v${i % 7}/*`] } }] };
        default: return { when: [{ key: 'request.headers[x-k]', values: [`v${i}`] }] };
      }
    });
    const indexed = compile({ name: 'many', rules });
    const requests = [
      facts({ path: '/svc0/exact' }), facts({ path: '/svc1/anything', method: 'POST' }), facts({ path: '/svc1/anything' }),
      facts({ sourcePrincipal: 'cluster.local/ns/shop/sa/sa2' }), facts({ path: '/api/svc3/42/items' }), facts({ path: '/api/svc3/42/other' }), facts({ path: '/api/v5/x' }), facts({ path: '/api/v9/x' }),
      facts({ headers: { 'x-k': 'v4' } }), facts({ headers: { 'x-k': 'v5' } }), facts({ path: '/svc1995/exact' }), facts({ path: '/nothing' }),
    ];
    const brute = (f: ReturnType<typeof facts>) => {
      for (let r = 0; r < rules.length; r++) {
        if (compile({ name: 'one', rules: [rules[r]!] }).evaluate(orders, f, undefined).allowed) return r;
      }
      return undefined;
    };
    for (const f of requests) {
      const v = indexed.evaluate(orders, f, auth());
      const expected = brute(f);
      expect(v.allowed).toBe(expected !== undefined);
      if (expected !== undefined) expect(v.decidedBy?.rule).toBe(expected);
    }
  });
});

describe('AUDIT rule index', () => {
  // 40 AUDIT policies (more than the index's linear-search threshold of matches), each with rules
  // of every index kind, so one request matches several rules of several policies.
  const ruleOf = (p: number, r: number) => {
    switch ((p + r) % 5) {
      case 0: return { to: [{ operation: { paths: [`/a/${p % 4}`] } }] };
      case 1: return { to: [{ operation: { paths: [`/a/*`], methods: [p % 2 ? 'POST' : 'GET'] } }] };
      case 2: return { from: [{ source: { principals: [`cluster.local/ns/shop/sa/sa${p % 3}`] } }] };
      case 3: return { to: [{ operation: { paths: [`/a/{*}/b`] } }] };
      default: return { when: [{ key: 'request.headers[x-k]', values: [`v${p % 6}`] }] };
    }
  };
  const policies = Array.from({ length: 40 }, (_, p) => ({ name: `audit-${p}`, action: 'AUDIT' as const, rules: [0, 1, 2].map((r) => ruleOf(p, r)) }));
  const indexed = compile(...policies);

  it('reports, for every policy, its first matching rule, as evaluating each rule alone does (allow and deny-free)', () => {
    const paths = ['/a/0', '/a/1', '/a/3', '/a/x/b', '/a/x/c', '/b', '/a'];
    const principals = ['cluster.local/ns/shop/sa/sa0', 'cluster.local/ns/shop/sa/sa2', 'cluster.local/ns/shop/sa/web'];
    let matchedSomewhere = 0;
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        for (const sourcePrincipal of principals) {
          for (const headers of [{}, { 'x-k': 'v1' }, { 'x-k': 'v5' }] as Record<string, string>[]) {
            const f = facts({ path, method, sourcePrincipal, headers });
            const expected: { policy: string; rule: number }[] = [];
            policies.forEach((p, pi) => {
              const rule = p.rules.findIndex((r) => compile({ name: 'one', rules: [r] }).evaluate(orders, f, undefined).allowed);
              if (rule >= 0) expected.push({ policy: `shop/${policies[pi]!.name}`, rule });
            });
            const got = indexed.evaluate(orders, f, auth()).audit.map((m) => ({ policy: m.policy.id, rule: m.rule }));
            expect(got).toEqual(expected);
            if (expected.length > 16) matchedSomewhere++;
          }
        }
      }
    }
    // The many-matches route (past the linear search) was taken too.
    expect(matchedSomewhere).toBeGreaterThan(0);
  });
});
