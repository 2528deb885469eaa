/** DENY, CUSTOM and AUDIT rules match every reading of the path (`alternatePaths`); ALLOW rules only the path itself. */
import { describe, expect, it } from 'vitest';
import { compileAuthorizationPolicies } from '../../../src/policy/yaml/index.ts';
import { facts, type PolicyInput, policyDoc } from './helpers.ts';

const orders = { namespace: 'shop', labels: { app: 'orders' } };
const compile = (...ps: PolicyInput[]) => compileAuthorizationPolicies(ps.map((p, i) => policyDoc(p, i)), 'meshward-system');
const admin = { to: [{ operation: { paths: ['/admin/*'] } }] };
/** `/admin;x/y` as the ext_authz input builds it: forwarded unchanged, strictest reading `/admin/y`. */
const ambiguous = facts({ path: '/admin;x/y', alternatePaths: ['/admin/y'] });

describe('other readings of the path', () => {
  it('denies when a DENY rule matches only another reading, and says which', () => {
    const v = compile({ name: 'deny-admin', action: 'DENY', rules: [admin] }).evaluate(orders, ambiguous, undefined);
    expect(v.allowed).toBe(false);
    expect(v.reason).toBe('denied by DENY policy shop/deny-admin (rule 0) on the path read as /admin/y');
  });

  it('denies through notPaths too: a DENY of everything but /public/* catches /public/..%2fadmin', () => {
    const set = compile({ action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/public/*'] } }] }] });
    expect(set.evaluate(orders, facts({ path: '/public/..%2fadmin', alternatePaths: ['/admin'] }), undefined).allowed).toBe(false);
    expect(set.evaluate(orders, facts({ path: '/public/a%2Fb', alternatePaths: ['/public/a/b'] }), undefined).allowed).toBe(true);
  });

  it('keeps allowing a request no reading of which a DENY matches', () => {
    const v = compile({ action: 'DENY', rules: [admin] }).evaluate(orders, facts({ path: '/public;x/y', alternatePaths: ['/public/y'] }), undefined);
    expect(v.allowed).toBe(true);
  });

  it('hands the request to a CUSTOM provider and reports an AUDIT policy matched under another reading', () => {
    const v = compile(
      { name: 'ext', action: 'CUSTOM', provider: { name: 'admin-rego' }, rules: [admin] },
      { name: 'audit-admin', action: 'AUDIT', rules: [admin] },
    ).evaluate(orders, ambiguous, undefined);
    expect(v.custom.map((m) => m.policy.id)).toEqual(['shop/ext']);
    expect(v.audit.map((m) => m.policy.id)).toEqual(['shop/audit-admin']);
  });

  it('reports a dry-run DENY that matches another reading', () => {
    const v = compile({ name: 'dry', action: 'DENY', dryRun: true, rules: [admin] }).evaluate(orders, ambiguous, undefined);
    expect(v.allowed).toBe(true);
    expect(v.shadowAllowed).toBe(false);
    expect(v.dryRun.map((d) => [d.policy.id, d.effect])).toEqual([['shop/dry', 'deny']]);
  });

  it('matches ALLOW rules against the path only (Istio semantics)', () => {
    const set = compile({ rules: [{ to: [{ operation: { paths: ['/files/{*}'] } }] }] });
    expect(set.evaluate(orders, facts({ path: '/files/a%2Fb', alternatePaths: ['/files/a/b'] }), undefined).allowed).toBe(true);
    expect(set.evaluate(orders, facts({ path: '/x;/files/a', alternatePaths: ['/x/files/a'] }), undefined).allowed).toBe(false);
  });
});
