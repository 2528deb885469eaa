import { describe, expect, it } from 'vitest';
import { errorCatalog } from '../../../src/lib/errors.ts';
import { RegoError } from '../../../src/policy/rego/errors.ts';
import { compileRego } from '../../../src/policy/rego/policy.ts';

function compileError(modules: Record<string, string>): RegoError {
  try {
    compileRego(modules);
  } catch (err) {
    if (err instanceof RegoError) return err;
    throw err;
  }
  throw new Error('expected a compile error');
}

describe('Rego compiler errors', () => {
  it('registers every Rego error code in the catalog', () => {
    for (const code of ['rego_parse_error', 'rego_compile_error', 'rego_type_error', 'rego_unsafe_var_error', 'rego_recursion_error', 'eval_conflict_error', 'eval_builtin_error', 'eval_type_error']) {
      expect(errorCatalog().has(code)).toBe(true);
    }
  });

  it('reports parse errors through compileRego', () => {
    const err = compileError({ 'a.rego': 'package a\np if {' });
    expect(err.code).toBe('rego_parse_error');
    expect(err.location?.file).toBe('a.rego');
  });

  it('reports an unsafe variable with its position', () => {
    const err = compileError({ 'a.rego': 'package a\n\nallow if {\n\tx := 1\n\ty > x\n}\n' });
    expect(err.code).toBe('rego_unsafe_var_error');
    expect(err.message).toBe('a.rego:5:2: rego_unsafe_var_error: var y is unsafe');
  });

  it('reports a head variable the body does not bind as unsafe', () => {
    const err = compileError({ 'a.rego': 'package a\n\np := x if input.y == 1\n' });
    expect(err.code).toBe('rego_unsafe_var_error');
    expect(err.text).toBe('var x is unsafe');
  });

  it('reorders a body so that a later binding makes an earlier use safe', () => {
    const p = compileRego({ 'a.rego': 'package a\n\np if {\n\tx > 1\n\tx := input.n\n}\n' });
    expect(p.evaluate('data.a.p', { n: 2 })[0]?.expressions[0]).toBe(true);
    expect(p.evaluate('data.a.p', { n: 0 })).toEqual([]);
  });

  it('reports recursion through rules', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if q\nq if p\n' });
    expect(err.code).toBe('rego_recursion_error');
    expect(err.text).toMatch(/^rule data\.a\.(p|q) is recursive: data\.a\.(p|q) -> data\.a\.(p|q) -> data\.a\.(p|q)$/);
  });

  it('reports recursion through a function', () => {
    const err = compileError({ 'a.rego': 'package a\n\nf(x) := f(x)\n' });
    expect(err.code).toBe('rego_recursion_error');
  });

  it('reports an undefined function as a type error', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if no_such_fn(1)\n' });
    expect(err.code).toBe('rego_type_error');
    expect(err.text).toBe('undefined function no_such_fn');
    expect(err.location).toEqual({ file: 'a.rego', line: 3, col: 6 });
  });

  it('reports a statically wrong built-in argument type', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if startswith(1, "x")\n' });
    expect(err.code).toBe('rego_type_error');
    expect(err.text).toMatch(/^startswith: invalid argument\(s\)/);
  });

  it('reports a built-in called with the wrong number of arguments', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if count([1], [2], [3])\n' });
    expect(err.code).toBe('rego_type_error');
    expect(err.text).toMatch(/^count: arity mismatch/);
  });

  it('reports a variable assigned twice', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if {\n\tx := 1\n\tx := 2\n}\n' });
    expect(err.code).toBe('rego_compile_error');
    expect(err.message).toBe('a.rego:5:2: rego_compile_error: var x assigned above');
  });

  it('reports an invalid with target', () => {
    const err = compileError({ 'a.rego': 'package a\n\np if {\n\tx := 1\n\ttrue with x as 2\n}\n' });
    expect(err.code).toBe('rego_compile_error');
  });

  it('collects errors from several modules', () => {
    const err = compileError({ 'a.rego': 'package a\np if y == 1\n', 'b.rego': 'package b\nq if z == 2\n' });
    expect(err.errors.length).toBe(2);
    expect(err.message).toMatch(/^2 errors occurred:/);
  });

  it('reports strict-mode errors only in strict mode', () => {
    const src = 'package a\nimport data.unused\n\nf(x, y) := y\n\np if {\n\tz := 1\n\ttrue\n}\n';
    expect(() => compileRego({ 'a.rego': src })).not.toThrow();
    let err: RegoError | undefined;
    try {
      compileRego({ 'a.rego': src }, { strict: true });
    } catch (e) {
      err = e as RegoError;
    }
    expect(err?.errors.map((e) => `${e.location?.line}: ${e.code}: ${e.text}`).sort()).toEqual([
      '2: rego_compile_error: import data.unused unused',
      '4: rego_compile_error: unused argument x. (hint: use _ (wildcard variable) instead)',
      '7: rego_compile_error: assigned var z unused',
    ]);
  });

  it('reports rules of different kinds for the same document', () => {
    const mixed = compileError({ 'a.rego': 'package a\n\np := 1\np contains 2\n' });
    expect(mixed.code).toBe('rego_type_error');
    expect(mixed.text).toBe('conflicting rules data.a.p found');
    const nested = compileError({ 'a.rego': 'package a\n\np := 1\np.q := 2\n' });
    expect(nested.text).toBe('rule data.a.p conflicts with [data.a.p.q]');
    const fn = compileError({ 'a.rego': 'package a\n\nf(x) := x\nf := 1\n' });
    expect(fn.code).toBe('rego_type_error');
  });

  it('accepts the sample policy shipped in policies/', async () => {
    const fs = await import('node:fs');
    const src = fs.readFileSync('policies/rego/payments.rego', 'utf8');
    expect(compileRego({ 'payments.rego': src }).rules()).toContain('data.envoy.authz.allow');
  });
});
