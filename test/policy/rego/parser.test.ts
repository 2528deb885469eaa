import { describe, expect, it } from 'vitest';
import { RegoError } from '../../../src/policy/rego/errors.ts';
import { parseModule, parseQuery } from '../../../src/policy/rego/parser.ts';

function parseError(src: string): RegoError {
  try {
    parseModule(src, 'policy.rego');
  } catch (err) {
    if (err instanceof RegoError) return err;
    throw err;
  }
  throw new Error('expected a parse error');
}

describe('Rego parser', () => {
  it('parses a v1 module with if, contains, else, functions, some/every/in and with', () => {
    const mod = parseModule(
      `package envoy.authz

import rego.v1
import data.roles as r

default allow := false

allow if {
	some role in input.roles
	role in r.admins
}

denied contains msg if {
	not allow
	msg := sprintf("denied %s", [input.path])
}

grade(x) := "a" if x > 90
else := "b" if x > 80
else := "c"

all_ok if every k, v in input.items { v.ok; k != "" }

mocked if allow with input.roles as ["admin"]
`,
      'policy.rego',
    );
    expect(mod.package.map((t) => (t.type === 'var' ? t.name : t.type === 'string' ? t.value : ''))).toEqual(['envoy', 'authz']);
    expect(mod.imports.map((i) => i.alias)).toEqual([undefined, 'r']);
    expect(mod.rules).toHaveLength(6);
    const grade = mod.rules[3]!;
    expect(grade.args).toHaveLength(1);
    expect(grade.else?.else).toBeDefined();
    expect(mod.rules[2]!.key).toBeDefined();
    expect(mod.rules[5]!.body[0]!.with).toHaveLength(1);
  });

  it('reports a missing if with file, line and column', () => {
    const err = parseError('package p\n\nallow {\n\ttrue\n}\n');
    expect(err.code).toBe('rego_parse_error');
    expect(err.location).toEqual({ file: 'policy.rego', line: 3, col: 7 });
    expect(err.message).toBe('policy.rego:3:7: rego_parse_error: `if` keyword is required before rule body');
  });

  it('reports an unterminated string at its opening quote', () => {
    const err = parseError('package p\n\nx := "abc\n');
    expect(err.location).toEqual({ file: 'policy.rego', line: 3, col: 6 });
    expect(err.text).toMatch(/non-terminated string/);
  });

  it('reports an unexpected token inside a body', () => {
    const err = parseError('package p\n\nallow if {\n  input.x == 1 input.y == 2\n}\n');
    expect(err.location).toEqual({ file: 'policy.rego', line: 4, col: 16 });
    expect(err.text).toMatch(/unexpected ident/);
  });

  it('requires a package clause', () => {
    const err = parseError('allow := true\n');
    expect(err.code).toBe('rego_parse_error');
    expect(err.location?.line).toBe(1);
  });

  it('rejects an illegal character with its position', () => {
    const err = parseError('package p\nx := 1 ^ 2\n');
    expect(err.location).toEqual({ file: 'policy.rego', line: 2, col: 8 });
  });

  it('keeps big integer literals as text', () => {
    const [e] = parseQuery('x := 18446744073709551614');
    expect(e?.kind).toBe('term');
    const call = e?.kind === 'term' ? e.term : undefined;
    expect(call?.type === 'call' ? call.args[1] : undefined).toMatchObject({ type: 'number', text: '18446744073709551614' });
  });

  it('accepts keywords as names after a dot and as ref-head starts', () => {
    const mod = parseModule('package test\n\nnot.foo := 1\n\np if input.in.if == 2\n', 'k.rego');
    expect(mod.rules).toHaveLength(2);
  });

  it('parses template strings with embedded expressions', () => {
    const mod = parseModule('package t\np := $"user {input.name} has {count(input.roles)} roles, \\{literal}"\n', 't.rego');
    const v = mod.rules[0]!.value!;
    expect(v.type).toBe('template');
    expect(v.type === 'template' ? v.parts.filter((p) => typeof p !== 'string') : []).toHaveLength(2);
  });

  it('ends a body literal at a newline but not inside brackets', () => {
    const body = parseQuery('x := [1,\n 2]\ny := x[0]');
    expect(body).toHaveLength(2);
  });
});
