import { describe, expect, it } from 'vitest';
import { compileRego } from '../../../src/policy/rego/policy.ts';
import { RegoSet, type Value } from '../../../src/policy/rego/value.ts';

// The evaluator's fast paths (`some x in <array>` as a loop, first-solution rules, accessor
// prefixes) must decide exactly as the general continuation-passing evaluation does.
const policy = compileRego({
  'fast.rego': `package fast
import rego.v1

default allow := false

method := input.method

allow if {
  method == "GET"
  some prefix in data.public_prefixes
  startswith(input.path, prefix)
}

allow if {
  some binding in data.bindings[input.principal]
  binding.method == method
  glob.match(binding.path, ["/"], input.path)
}

first_segment := input.parsed_path[0]

# Several solutions, one constant value: no conflict.
any_admin if {
  some r in input.roles
  startswith(r, "admin")
}

# A value that depends on the bound variable: every solution counts (conflict when they differ).
matching := r if {
  some r in input.roles
  startswith(r, "admin")
}
`,
});
const data = {
  public_prefixes: ['/health', '/public/'],
  bindings: { alice: [{ method: 'POST', path: '/api/cart/*' }], bob: { one: { method: 'GET', path: '/api/x' } } },
};
const allow = policy.entrypoint('fast/allow');
const doc = (name: string, input: Value): Value | undefined => policy.entrypoint(`fast/${name}`)(input, data as unknown as Value);

describe('Rego fast paths', () => {
  it('allows a GET under a public prefix and denies one outside every prefix', () => {
    expect(allow({ method: 'GET', path: '/public/logo.png' }, data as unknown as Value)).toBe(true);
    expect(allow({ method: 'GET', path: '/admin' }, data as unknown as Value)).toBe(false);
    expect(allow({ method: 'POST', path: '/public/logo.png' }, data as unknown as Value)).toBe(false);
  });

  it('allows a bound method and path and denies another method or an unknown principal', () => {
    expect(allow({ method: 'POST', path: '/api/cart/7', principal: 'alice' }, data as unknown as Value)).toBe(true);
    expect(allow({ method: 'GET', path: '/api/cart/7', principal: 'alice' }, data as unknown as Value)).toBe(false);
    expect(allow({ method: 'POST', path: '/api/cart/7', principal: 'mallory' }, data as unknown as Value)).toBe(false);
  });

  it('iterates objects and sets as the general evaluation does', () => {
    // bob's bindings are an object, not an array: the loop falls back to the generic iteration.
    expect(allow({ method: 'GET', path: '/api/x', principal: 'bob' }, data as unknown as Value)).toBe(true);
    expect(allow({ method: 'POST', path: '/api/x', principal: 'bob' }, data as unknown as Value)).toBe(false);
    expect(doc('any_admin', { roles: new RegoSet(['user', 'admin-eu']) })).toBe(true);
    expect(doc('any_admin', { roles: new RegoSet(['user']) })).toBeUndefined();
  });

  it('skips undefined array members and decides on the first solution', () => {
    expect(doc('any_admin', { roles: [undefined, 'admin-eu', 'admin-us'] as unknown as Value })).toBe(true);
    expect(doc('any_admin', { roles: ['user', undefined] as unknown as Value })).toBeUndefined();
    expect(doc('any_admin', { roles: 'admin' })).toBeUndefined();
  });

  it('still reports a conflict when a bound value differs between solutions', () => {
    expect(doc('matching', { roles: ['user', 'admin-eu'] })).toBe('admin-eu');
    expect(() => doc('matching', { roles: ['admin-eu', 'admin-us'] })).toThrow(/multiple outputs/);
  });

  it('honours with on input-path rules (method := input.method)', () => {
    const p = compileRego({
      'w.rego': `package w
import rego.v1

method := input.method

is_get if method == "GET"

via_data if is_get with data.w.method as "GET"
via_input if is_get with input.method as "GET"
`,
    });
    const doc = (name: string, input: Value) => p.entrypoint(`w/${name}`)(input);
    expect(doc('is_get', { method: 'GET' })).toBe(true);
    expect(doc('is_get', { method: 'POST' })).toBeUndefined();
    expect(doc('via_data', { method: 'POST' })).toBe(true);
    expect(doc('via_input', { method: 'POST' })).toBe(true);
    expect(p.evaluate('data.w', { method: 'PUT' })[0]!.expressions[0]).toEqual({ method: 'PUT', via_data: true, via_input: true });
  });

  it('reads a field path followed by an index', () => {
    expect(doc('first_segment', { parsed_path: ['payments.v1.Payments', 'Charge'] })).toBe('payments.v1.Payments');
    expect(doc('first_segment', { parsed_path: [] })).toBeUndefined();
    expect(doc('first_segment', { parsed_path: { 0: 'x' } })).toBeUndefined();
    expect(doc('first_segment', {})).toBeUndefined();
  });
});
