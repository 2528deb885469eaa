/**
 * Strict-mode checks (OPA's `--strict`): unused local assignments, unused function arguments,
 * unused imports and deprecated built-ins are compile errors. Pure: module in, errors out.
 */
import type { Expr, Module, Rule, Term } from './ast.ts';
import { RegoError } from './errors.ts';
import { deepExprVars, deepTermVars } from './scope.ts';

const DEPRECATED = new Set(['any', 'all', 're_match', 'net.cidr_overlap', 'set_diff', 'cast_array', 'cast_set', 'cast_string', 'cast_boolean', 'cast_null', 'cast_object']);

function callName(t: Term): string | undefined {
  if (t.type === 'var') return t.name;
  if (t.type !== 'ref' || t.head.type !== 'var') return undefined;
  const parts = [t.head.name];
  for (const p of t.path) {
    if (p.type !== 'string') return undefined;
    parts.push(p.value);
  }
  return parts.join('.');
}

function ruleVars(rule: Rule, fn: (v: Extract<Term, { type: 'var' }>) => void): void {
  for (let r: Rule | undefined = rule; r; r = r.else) {
    for (const t of r.ref.slice(1)) deepTermVars(t, fn);
    for (const a of r.args ?? []) deepTermVars(a, fn);
    if (r.key) deepTermVars(r.key, fn);
    if (r.value) deepTermVars(r.value, fn);
    for (const e of r.body) deepExprVars(e, fn);
  }
}

function assignedVars(body: Expr[], out: Extract<Term, { type: 'var' }>[]): void {
  const visitTerm = (t: Term): void => {
    if (t.type === 'arraycomp' || t.type === 'setcomp' || t.type === 'objectcomp') visitBody(t.body);
  };
  const visitBody = (b: Expr[]): void => {
    for (const e of b) {
      if (e.kind === 'term' && e.term.type === 'call' && e.term.op.type === 'var' && e.term.op.name === 'assign') {
        deepTermVars(e.term.args[0]!, (v) => v.name !== '_' && out.push(v));
        visitTerm(e.term.args[1]!);
      } else if (e.kind === 'every') visitBody(e.body);
    }
  };
  visitBody(body);
}

export function strictErrors(mod: Module): RegoError[] {
  const errors: RegoError[] = [];
  const used = new Map<string, number>();
  for (const rule of mod.rules) {
    const counts = new Map<string, number>();
    ruleVars(rule, (v) => {
      counts.set(v.name, (counts.get(v.name) ?? 0) + 1);
      used.set(v.name, (used.get(v.name) ?? 0) + 1);
    });
    for (let r: Rule | undefined = rule; r; r = r.else) {
      const assigned: Extract<Term, { type: 'var' }>[] = [];
      assignedVars(r.body, assigned);
      for (const v of assigned) if ((counts.get(v.name) ?? 0) <= 1) errors.push(new RegoError('rego_compile_error', `assigned var ${v.name} unused`, v.loc));
      for (const e of r.body) {
        const visit = (t: Term): void => {
          if (t.type === 'call') {
            const name = callName(t.op);
            if (name && DEPRECATED.has(name)) errors.push(new RegoError('rego_type_error', `deprecated built-in function calls in expression: ${name}`, t.loc));
            t.args.forEach(visit);
          }
        };
        if (e.kind === 'term') visit(e.term);
      }
    }
    if (rule.args && !rule.default) {
      for (const a of rule.args) {
        if (a.type === 'var' && a.name !== '_' && (counts.get(a.name) ?? 0) <= 1) {
          errors.push(new RegoError('rego_compile_error', `unused argument ${a.name}. (hint: use _ (wildcard variable) instead)`, a.loc));
        }
      }
    }
  }
  for (const imp of mod.imports) {
    const t = imp.path;
    const head = t.type === 'ref' ? t.head : t;
    if (head.type !== 'var' || head.name === 'rego' || head.name === 'future') continue;
    const last = t.type === 'ref' ? t.path[t.path.length - 1] : undefined;
    const alias = imp.alias ?? (last?.type === 'string' ? last.value : head.name);
    if (!used.has(alias)) errors.push(new RegoError('rego_compile_error', `import ${callName(t) ?? alias} unused`, imp.loc));
  }
  return errors;
}
