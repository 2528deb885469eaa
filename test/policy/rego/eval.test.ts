import { describe, expect, it } from 'vitest';
import { RegoError } from '../../../src/policy/rego/errors.ts';
import { Program } from '../../../src/policy/rego/compiler.ts';
import { parseModule } from '../../../src/policy/rego/parser.ts';
import { compileRego } from '../../../src/policy/rego/policy.ts';
import { EvalCtx } from '../../../src/policy/rego/runtime.ts';
import { RegoSet, type Value, toJSON } from '../../../src/policy/rego/value.ts';

function value(src: string, query: string, input?: Value, data?: Value): unknown {
  const rows = compileRego({ 'test.rego': src }).evaluate(query, input, data);
  return rows.length === 0 ? undefined : toJSON(rows[0]!.expressions[0]!);
}

function evalError(src: string, query: string, input?: Value, strict = false): RegoError {
  try {
    compileRego({ 'test.rego': src }).evaluate(query, input, undefined, { strictBuiltinErrors: strict });
  } catch (err) {
    if (err instanceof RegoError) return err;
    throw err;
  }
  throw new Error('expected an evaluation error');
}

describe('Rego evaluation', () => {
  it('distinguishes undefined from false, and default fills undefined', () => {
    const src = 'package t\nimport rego.v1\n\np if input.x == 1\nq := false if input.x == 1\ndefault r := "none"\nr := "one" if input.x == 1\nneg if not p\n';
    expect(value(src, 'data.t.p', { x: 1 })).toBe(true);
    expect(value(src, 'data.t.p', { x: 2 })).toBeUndefined();
    expect(value(src, 'data.t.q', { x: 1 })).toBe(false);
    expect(value(src, 'data.t.r', { x: 2 })).toBe('none');
    expect(value(src, 'data.t.r', { x: 1 })).toBe('one');
    expect(value(src, 'data.t.neg', { x: 2 })).toBe(true);
    expect(value(src, 'data.t.neg', { x: 1 })).toBeUndefined();
  });

  it('raises eval_conflict_error when a complete rule has two values', () => {
    const src = 'package t\np := 1 if input.a\np := 2 if input.b\n';
    expect(value(src, 'data.t.p', { a: true })).toBe(1);
    const err = evalError(src, 'data.t.p', { a: true, b: true });
    expect(err.code).toBe('eval_conflict_error');
    expect(err.message).toBe('test.rego:3: eval_conflict_error: complete rules must not produce multiple outputs');
  });

  it('raises eval_conflict_error for functions and for object keys', () => {
    expect(evalError('package t\nf(x) := 1 if x > 0\nf(x) := 2 if x > 1\np := f(5)\n', 'data.t.p').text).toBe('functions must not produce multiple outputs for same inputs');
    expect(evalError('package t\np[k] := v if { some k, v in {"a": 1}; true }\np["a"] := 2\n', 'data.t.p').text).toBe('object keys must be unique');
  });

  it('unions partial set rules and builds partial objects', () => {
    const src = 'package t\nimport rego.v1\nroles contains r if some r in input.a\nroles contains "guest"\nby_name[u.name] := u.age if some u in input.users\n';
    const input = { a: ['admin', 'dev', 'admin'], users: [{ name: 'ann', age: 30 }, { name: 'bob', age: 40 }] };
    expect(value(src, 'data.t.roles', input)).toEqual(['admin', 'dev', 'guest']);
    expect(value(src, 'data.t.by_name', input)).toEqual({ ann: 30, bob: 40 });
    expect(value(src, 'data.t.roles', { a: [] })).toEqual(['guest']);
  });

  it('follows else chains in order', () => {
    const src = 'package t\ngrade := "a" if input.s > 90\nelse := "b" if input.s > 80\nelse := "c"\n';
    expect(value(src, 'data.t.grade', { s: 95 })).toBe('a');
    expect(value(src, 'data.t.grade', { s: 85 })).toBe('b');
    expect(value(src, 'data.t.grade', { s: 10 })).toBe('c');
  });

  it('evaluates some, every and in', () => {
    const src = 'package t\nimport rego.v1\nany_admin if { some r in input.roles; r == "admin" }\nall_short if every s in input.roles { count(s) < 6 }\nhas_dev if "dev" in input.roles\nkv if { some i, r in input.roles; i == 1; r == "dev" }\n';
    expect(value(src, 'data.t.any_admin', { roles: ['dev', 'admin'] })).toBe(true);
    expect(value(src, 'data.t.any_admin', { roles: ['dev'] })).toBeUndefined();
    expect(value(src, 'data.t.all_short', { roles: ['dev', 'admin'] })).toBe(true);
    expect(value(src, 'data.t.all_short', { roles: ['developer'] })).toBeUndefined();
    expect(value(src, 'data.t.all_short', { roles: [] })).toBe(true);
    expect(value(src, 'data.t.has_dev', { roles: ['dev'] })).toBe(true);
    expect(value(src, 'data.t.kv', { roles: ['admin', 'dev'] })).toBe(true);
    expect(value(src, 'data.t.kv', { roles: ['dev', 'admin'] })).toBeUndefined();
  });

  it('evaluates comprehensions', () => {
    const src = 'package t\nimport rego.v1\nsq := [x * x | some x in input.n]\nodd := {x | some x in input.n; x % 2 == 1}\nidx := {k: v | some k, v in input.n}\n';
    const input = { n: [1, 2, 3] };
    expect(value(src, 'data.t.sq', input)).toEqual([1, 4, 9]);
    expect(value(src, 'data.t.odd', input)).toEqual([1, 3]);
    expect(value(src, 'data.t.idx', input)).toEqual({ '0': 1, '1': 2, '2': 3 });
  });

  it('overrides input, data and functions with `with`', () => {
    const src = `package t
import rego.v1
allow if input.user == data.admins[_]
f(x) := x + 1
g(x) := x * 10
p := f(1)
with_input if allow with input.user as "ann"
with_data if allow with input.user as "zed" with data.admins as ["zed"]
with_fn := v if v := p with f as g
with_value := v if v := p with f as 7
with_builtin := v if v := count([1, 2]) with count as 42
`;
    const data = { admins: ['ann'] };
    const pol = compileRego({ 'test.rego': src });
    const get = (q: string) => toJSON(pol.evaluate(q, {}, data)[0]!.expressions[0]!);
    expect(get('data.t.with_input')).toBe(true);
    expect(get('data.t.with_data')).toBe(true);
    expect(get('data.t.with_fn')).toBe(10);
    expect(get('data.t.with_value')).toBe(7);
    expect(get('data.t.with_builtin')).toBe(42);
    expect(pol.evaluate('data.t.allow', { user: 'bob' }, data)).toEqual([]);
  });

  it('sends print output to the sink without changing the result', () => {
    const lines: string[] = [];
    const pol = compileRego({ 'test.rego': 'package t\np if {\n\tprint("user", input.user, input.missing)\n\tinput.user == "ann"\n}\n' });
    const rows = pol.evaluate('data.t.p', { user: 'ann' }, undefined, { print: (t) => lines.push(t) });
    expect(rows).toHaveLength(1);
    expect(lines).toEqual(['user ann <undefined>']);
  });

  it('makes a failing built-in undefined, or an error in strict mode', () => {
    const src = 'package t\np := x if x := 1 / input.d\n';
    expect(value(src, 'data.t.p', { d: 0 })).toBeUndefined();
    const err = evalError(src, 'data.t.p', { d: 0 }, true);
    expect(err.code).toBe('eval_builtin_error');
    expect(err.message).toMatch(/^test\.rego:2: eval_builtin_error: div: divide by zero/);
    const typeErr = evalError('package t\np := x if x := 1 + input.s\n', 'data.t.p', { s: 'a' }, true);
    expect(typeErr.code).toBe('eval_type_error');
  });

  it('keeps integers beyond 2^53 exact', () => {
    const rows = compileRego({}).evaluate('x := 18446744073709551614 + 1');
    expect(rows[0]!.bindings.x).toBe(18446744073709551615n);
  });

  it('keeps a number literal beyond float64 range as written, with its exact value for arithmetic and comparison', () => {
    const one = (query: string) => toJSON(compileRego({}).evaluate(`x := ${query}`)[0]!.bindings.x!);
    expect(one('sprintf("hi %v", [2e308])')).toBe('hi 2e308');
    expect(one('sprintf("%d", [2e308])')).toBe('%!d(string=2e308)');
    expect(one('json.marshal([2e308, -3e308])')).toBe('[2e308,-3e308]');
    expect(one('type_name(2e308)')).toBe('number');
    expect(one('2e308 + 1')).toBe(2n * 10n ** 308n + 1n);
    expect(one('sum([2e308, 2e308])')).toBe(4n * 10n ** 308n);
    expect(one('2e308 - 2e308')).toBe(0);
    expect(one('[2e308 > 1e308, 2e308 < 3e308, 2e308 == 20e307, 2e308 == 2e308 + 0, -2e308 < 0]')).toEqual([true, true, true, true, true]);
    expect(one('count({2e308, 20e307})')).toBe(1);
    expect(compileRego({}).evaluate('x := 2e308; x.text')).toEqual([]);
  });

  it('unifies objects by key, not by position', () => {
    expect(compileRego({}).evaluate('{"a": x, "b": y} = {"b": 2, "a": 1}')[0]!.bindings).toEqual({ x: 1, y: 2 });
    expect(compileRego({}).evaluate('{"a": x} = {"b": 1}')).toEqual([]);
  });

  it('returns one binding row per solution of a query', () => {
    const rows = compileRego({}).evaluate('x := [1, 2, 3][_]; x > 1');
    expect(rows.map((r) => r.bindings.x)).toEqual([2, 3]);
  });

  it('evaluates an entrypoint path and a query alike', () => {
    const pol = compileRego({ 'a.rego': 'package envoy.authz\ndefault allow := false\nallow if input.method == "GET"\n' });
    const allow = pol.entrypoint('envoy/authz/allow');
    expect(allow({ method: 'GET' })).toBe(true);
    expect(allow({ method: 'POST' })).toBe(false);
    expect(toJSON(pol.evaluate('envoy/authz/allow', { method: 'GET' })[0]!.expressions[0]!)).toBe(true);
    expect(pol.evaluate('data.envoy.authz.allow = x', { method: 'POST' })[0]!.bindings.x).toBe(false);
    expect(toJSON(pol.evaluate('data.envoy.authz', { method: 'GET' })[0]!.expressions[0]!)).toEqual({ allow: true });
  });

  it('decides the same with rule indexing as without, for allow and deny', () => {
    let src = 'package rbac\ndefault allow := false\n';
    for (let i = 0; i < 50; i++) src += `allow if { input.role == "r${i}"; input.path == "/p${i}" }\n`;
    src += 'allow if { input.role == "root" }\n';
    const allow = compileRego({ 'r.rego': src }).entrypoint('rbac/allow');
    expect(allow({ role: 'r7', path: '/p7' })).toBe(true);
    expect(allow({ role: 'r7', path: '/p8' })).toBe(false);
    expect(allow({ role: 'root', path: '/anything' })).toBe(true);
    expect(allow({ role: 'nobody', path: '/p1' })).toBe(false);
    expect(allow({ path: '/p1' })).toBe(false);
  });

  it('indexes partial set rules on input equality without changing results', () => {
    let src = 'package adm\nimport rego.v1\n';
    for (let i = 0; i < 20; i++) src += `deny contains "kind ${i} denied" if { input.kind == "K${i}"; input.user != "root" }\n`;
    src += 'deny contains "no user" if not input.user\n';
    const deny = compileRego({ 'a.rego': src }).entrypoint('adm/deny');
    expect(toJSON(deny({ kind: 'K3', user: 'ann' })!)).toEqual(['kind 3 denied']);
    expect(toJSON(deny({ kind: 'K3', user: 'root' })!)).toEqual([]);
    expect(toJSON(deny({ kind: 'K3' })!)).toEqual(['no user']); // input.user != "root" is undefined, not true
    expect(toJSON(deny({ kind: 'other', user: 'ann' })!)).toEqual([]);
  });

  it('reads sets from input_term style values and functions with patterns', () => {
    const src = 'package t\nf([a, b]) := a + b\np := f([1, 2])\nq := s if s := {1, 2} | {3}\n';
    expect(value(src, 'data.t.p')).toBe(3);
    const rows = compileRego({ 'test.rego': src }).evaluate('data.t.q');
    expect(rows[0]!.expressions[0]).toBeInstanceOf(RegoSet);
  });

  it('merges base data with rule documents', () => {
    const src = 'package t\nx := 1\n';
    expect(value(src, 'data.t', {}, { t: { y: 2 } })).toEqual({ x: 1, y: 2 });
    expect(value(src, 'data.other.z', {}, { other: { z: 'base' } })).toBe('base');
  });

  it('interpolates template strings', () => {
    expect(value('package t\np := $"{input.n} items for {input.u}"\n', 'data.t.p', { n: 3, u: 'ann' })).toBe('3 items for ann');
  });

  it('reads only own data properties through input paths', () => {
    const src = 'package t\nlen := input.a.length\nsize := input.s.size\nts := input.o.toString\nctor := input.c.constructor.x\nnp := input.n.k\n';
    const pol = compileRego({ 'test.rego': src });
    const nullProto = Object.create(null) as Record<string, Value>;
    nullProto.k = 'v';
    const input = { a: [1, 2], s: new RegoSet([1]), o: {}, c: { constructor: { x: 1 } }, n: nullProto } as unknown as Value;
    const get = (q: string) => pol.evaluate(q, input).map((r) => toJSON(r.expressions[0]!));
    expect(get('data.t.len')).toEqual([]);
    expect(get('data.t.size')).toEqual([]);
    expect(get('data.t.ts')).toEqual([]);
    expect(get('data.t.ctor')).toEqual([1]);
    expect(get('data.t.np')).toEqual(['v']);
  });

  it('exposes METADATA annotations through rego.metadata.rule and chain', () => {
    const src = `# METADATA
# title: Payments
# scope: package
package pay

# METADATA
# title: Large charges
# authors:
# - Ann Example <ann@example.com>
# custom:
#   severity: high
deny contains msg if {
	input.amount > 1000
	meta := rego.metadata.rule()
	msg := sprintf("%s (%s)", [meta.title, meta.custom.severity])
}

chain := [e.path | some e in rego.metadata.chain()]
`;
    const pol = compileRego({ 'pay.rego': src });
    expect(toJSON(pol.evaluate('data.pay.deny', { amount: 5000 })[0]!.expressions[0]!)).toEqual(['Large charges (high)']);
    expect(toJSON(pol.evaluate('data.pay.chain')[0]!.expressions[0]!)).toEqual([['pay', 'chain'], ['pay']]);
    let err: RegoError | undefined;
    try {
      compileRego({ 'bad.rego': '# METADATA\n# scope: everywhere\npackage bad\n' });
    } catch (e) {
      err = e as RegoError;
    }
    expect(err?.code).toBe('rego_parse_error');
    expect(err?.location).toEqual({ file: 'bad.rego', line: 1, col: 1 });
  });

  const LIB = 'package lib\ndouble(x) := x * 2\n';
  it.each([
    ['else on functions', 'package t\nf(x) := "big" if x > 10\nelse := "small"\np := [f(1), f(20)]', {}, ['small', 'big']],
    ['undefined function result', 'package t\nf(x) := y if { y := x * 2; x > 0 }\np := f(-1)', {}, undefined],
    ['default function', 'package t\ndefault f(_) := 0\nf(x) := 1 if x == "a"\np := [f("a"), f("b")]', {}, [1, 0]],
    ['not every (some fails)', 'package t\nimport rego.v1\np if not every x in input.xs { x > 0 }', { xs: [1, -1] }, true],
    ['not every (all hold)', 'package t\nimport rego.v1\np if not every x in input.xs { x > 0 }', { xs: [1, 2] }, undefined],
    ['not of a false function', 'package t\nf(x) := false\np if not f(1)', {}, true],
    ['# inside a string', 'package t\np := "a#b" # comment', {}, 'a#b'],
    ['trailing comma over lines', 'package t\np := [1, 2,\n 3,]', {}, [1, 2, 3]],
    ['future.keywords import', 'package t\nimport future.keywords.in\np if 2 in input.xs', { xs: [1, 2] }, true],
    ['count of an empty set rule', 'package t\nimport rego.v1\ndeny contains "x" if input.x\nallow if count(deny) == 0', { x: false }, true],
    ['count of a non-empty set rule', 'package t\nimport rego.v1\ndeny contains "x" if input.x\nallow if count(deny) == 0', { x: true }, undefined],
    ['some then unify', 'package t\np if { some i; input.arr[i] == 3; i == 2 }', { arr: [1, 2, 3] }, true],
    ['iteration inside a ref', 'package t\np if input.a[_].b == "x"', { a: [{ b: 'y' }, { b: 'x' }] }, true],
    ['raw string', 'package t\np := `raw\\nstr`', {}, 'raw\\nstr'],
    ['unicode escape', 'package t\np := "\\u00e9"', {}, 'é'],
    ['numbers compare by value', 'package t\np if 1 == 1.0', {}, true],
    ['partial object by key', 'package t\nimport rego.v1\nq[x] := y if { some x, y in input.m }\np := q.a', { m: { a: 1 } }, 1],
    ['multi-line comprehension', 'package t\nimport rego.v1\np := x if {\n  x := [y |\n    some y in input.a\n    y > 1\n  ]\n}', { a: [1, 2, 3] }, [2, 3]],
    ['else on a rule ref', 'package t\nimport rego.v1\nis_get if input.method == "GET"\np := "yes" if is_get else := "no"', { method: 'POST' }, 'no'],
    ['imported package function', 'package t\nimport data.lib\np := lib.double(2)', {}, 4],
  ])('agrees with OPA: %s', (_name, src, input, want) => {
    const rows = compileRego({ 'a.rego': src, 'lib.rego': LIB }).evaluate('data.t.' + (src.includes('allow if') ? 'allow' : 'p'), input as Value);
    expect(rows.length ? toJSON(rows[0]!.expressions[0]!) : undefined).toEqual(want);
  });

  it('rejects a keyword where a rule should start', () => {
    expect(() => compileRego({ 'a.rego': 'package t\np := data.t with data.t.x as 1\n' })).toThrow(/unexpected with keyword/);
  });

  it('keeps no request data in the rule tree after an evaluation', () => {
    const program = new Program();
    // `secret` has a body, so its value is cached for the evaluation; `raw := input.token` is read
    // straight from the input and never cached.
    const src = 'package t\nsecret := input.token if input.token != ""\nraw := input.token\nallow if { secret == "s3cret"; raw == "s3cret" }\n';
    program.compileModules([parseModule(src, 't.rego')]);
    const c = new EvalCtx({ token: 's3cret' }, {}, undefined);
    expect(program.evalTop(program.nodeAt(['t', 'allow'])!, c)).toBe(true);
    const secret = program.nodeAt(['t', 'secret'])!;
    const raw = program.nodeAt(['t', 'raw'])!;
    expect(secret.cached).toBe('s3cret');
    expect(raw.cached).toBeUndefined();
    c.release();
    expect(secret.cached).toBeUndefined();
    expect(program.evalTop(program.nodeAt(['t', 'allow'])!, new EvalCtx({ token: 'other' }, {}, undefined))).toBeUndefined();
  });
});
