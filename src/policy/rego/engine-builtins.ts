/**
 * Built-ins that need the engine itself (the parser), so they live here rather than with the
 * value-level built-ins: `rego.parse_module` returns a module's AST in OPA's JSON shape.
 */
import type { Expr, Module, Rule, Term, With } from './ast.ts';
import { BuiltinError, type BuiltinDefinition } from './builtins/index.ts';
import { RegoError } from './errors.ts';
import { parseModule } from './parser.ts';
import { type PlainObject, type Value, numberFromText } from './value.ts';

function term(t: Term): Value {
  switch (t.type) {
    case 'null':
      return { type: 'null', value: null };
    case 'boolean':
      return { type: 'boolean', value: t.value };
    case 'number':
      return { type: 'number', value: numberFromText(t.text) };
    case 'string':
      return { type: 'string', value: t.value };
    case 'var':
      return { type: 'var', value: t.name };
    case 'ref':
      return { type: 'ref', value: [term(t.head), ...t.path.map(term)] };
    case 'array':
      return { type: 'array', value: t.items.map(term) };
    case 'set':
      return { type: 'set', value: t.items.map(term) };
    case 'object':
      return { type: 'object', value: t.entries.map(([k, v]) => [term(k), term(v)]) };
    case 'call':
      return { type: 'call', value: [term(t.op), ...t.args.map(term)] };
    case 'arraycomp':
      return { type: 'arraycomprehension', value: { term: term(t.term), body: t.body.map(expr) } };
    case 'setcomp':
      return { type: 'setcomprehension', value: { term: term(t.term), body: t.body.map(expr) } };
    case 'objectcomp':
      return { type: 'objectcomprehension', value: { key: term(t.key), value: term(t.value), body: t.body.map(expr) } };
    case 'template':
      return { type: 'templatestring', value: t.parts.map((p) => (typeof p === 'string' ? { type: 'string', value: p } : expr(p))) };
  }
}

function withs(ws: With[]): PlainObject {
  return { with: ws.map((w) => ({ target: term(w.target), value: term(w.value) })) };
}

function expr(e: Expr, index = 0): Value {
  const out: PlainObject = { index };
  if (e.negated) out.negated = true;
  switch (e.kind) {
    case 'term':
      out.terms = e.term.type === 'call' ? [term(e.term.op), ...e.term.args.map(term)] : term(e.term);
      break;
    case 'some':
      out.terms = { type: 'somedecl', value: e.vars.map(term) };
      break;
    case 'somein':
      out.terms = { type: 'somedecl', value: [{ type: 'call', value: [{ type: 'ref', value: [{ type: 'var', value: 'internal' }, { type: 'string', value: e.key ? 'member_3' : 'member_2' }] }, ...(e.key ? [term(e.key)] : []), term(e.value), term(e.domain)] }] };
      break;
    case 'every':
      out.terms = { type: 'every', value: { ...(e.key ? { key: term(e.key) } : {}), value: term(e.value), domain: term(e.domain), body: e.body.map(expr) } };
      break;
  }
  return e.with.length ? { ...out, ...withs(e.with) } : out;
}

function rule(r: Rule): PlainObject {
  const head: PlainObject = { ref: r.ref.map(term) };
  const name = r.ref[0];
  if (name?.type === 'var' && r.ref.length === 1) head.name = name.name;
  if (r.args) head.args = r.args.map(term);
  if (r.key) head.key = term(r.key);
  if (r.value) head.value = term(r.value);
  if (r.assign) head.assign = true;
  const out: PlainObject = { head, body: r.body.map((e, i) => expr(e, i)) };
  if (r.default) out.default = true;
  if (r.else) out.else = rule(r.else);
  return out;
}

export function moduleToJSON(m: Module): PlainObject {
  return {
    package: { path: [{ type: 'var', value: 'data' }, ...m.package.map((t) => (t.type === 'var' ? { type: 'string', value: t.name } : term(t)))] },
    ...(m.imports.length ? { imports: m.imports.map((i) => ({ path: term(i.path), ...(i.alias ? { alias: i.alias } : {}) })) } : {}),
    ...(m.rules.length ? { rules: m.rules.map(rule) } : {}),
  };
}

const S = { kind: 'string' } as const;

export const ENGINE_BUILTINS: readonly BuiltinDefinition[] = [
  {
    name: 'rego.parse_module',
    decl: { args: [S, S], result: { kind: 'object', key: S, value: { kind: 'any' } } },
    fn(args) {
      const [file, source] = args;
      if (typeof file !== 'string') throw new BuiltinError('operand 1 must be string');
      if (typeof source !== 'string') throw new BuiltinError('operand 2 must be string');
      try {
        return moduleToJSON(parseModule(source, file));
      } catch (err) {
        if (err instanceof RegoError) throw new BuiltinError(err.message);
        throw err;
      }
    },
  },
];
