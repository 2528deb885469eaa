/** Rego abstract syntax (what the parser produces and the compiler consumes). */
import type { RegoLocation } from './errors.ts';

export type Loc = RegoLocation;

export type Term =
  | { type: 'null'; loc: Loc }
  | { type: 'boolean'; value: boolean; loc: Loc }
  /** Number literal kept as its text so big integers keep their precision. */
  | { type: 'number'; text: string; loc: Loc }
  | { type: 'string'; value: string; loc: Loc }
  | { type: 'var'; name: string; loc: Loc }
  /** `head.a[b]...`; head is a var, a call or a composite literal. */
  | { type: 'ref'; head: Term; path: Term[]; loc: Loc }
  | { type: 'array'; items: Term[]; loc: Loc }
  | { type: 'set'; items: Term[]; loc: Loc }
  | { type: 'object'; entries: [Term, Term][]; loc: Loc }
  /** Operator or function call; `op` is the callee as a ref (`plus`, `startswith`, `data.x.f`, `f`). */
  | { type: 'call'; op: Term; args: Term[]; loc: Loc }
  | { type: 'arraycomp'; term: Term; body: Expr[]; loc: Loc }
  | { type: 'setcomp'; term: Term; body: Expr[]; loc: Loc }
  | { type: 'objectcomp'; key: Term; value: Term; body: Expr[]; loc: Loc }
  | { type: 'template'; parts: (string | Expr)[]; loc: Loc };

export interface With {
  target: Term;
  value: Term;
  loc: Loc;
}

export type Expr =
  | { kind: 'term'; term: Term; negated: boolean; with: With[]; loc: Loc }
  /** `some x, y` (declaration only). */
  | { kind: 'some'; vars: Term[]; with: With[]; negated: boolean; loc: Loc }
  /** `some [key,] value in domain`. */
  | { kind: 'somein'; key?: Term; value: Term; domain: Term; with: With[]; negated: boolean; loc: Loc }
  | { kind: 'every'; key?: Term; value: Term; domain: Term; body: Expr[]; with: With[]; negated: boolean; loc: Loc };

export interface Rule {
  default: boolean;
  /** Head ref: first element a var (the rule name), then path terms (strings or terms). */
  ref: Term[];
  args?: Term[];
  /** `contains` key for multi-value (partial set) rules. */
  key?: Term;
  value?: Term;
  /** `:=` rather than `=` in the head. */
  assign: boolean;
  body: Expr[];
  else?: Rule;
  /** YAML of the `# METADATA` block just above the rule, if any. */
  annotations?: Annotation;
  loc: Loc;
  /** Source text of the head for messages. */
  file: string;
}

/** A `# METADATA` comment block: its YAML text (comment markers removed) and position. */
export interface Annotation {
  yaml: string;
  loc: Loc;
}

export interface Import {
  path: Term;
  alias?: string;
  loc: Loc;
}

export interface Module {
  file: string;
  package: Term[];
  packageLoc: Loc;
  imports: Import[];
  rules: Rule[];
  /** `# METADATA` block above the package clause. */
  annotations?: Annotation;
}

export function varTerm(name: string, loc: Loc): Term {
  return { type: 'var', name, loc };
}

export function stringTerm(value: string, loc: Loc): Term {
  return { type: 'string', value, loc };
}

/** `a.b.c` → ['a','b','c'] when the ref is all string path after a var head, else undefined. */
export function refToPath(t: Term): string[] | undefined {
  if (t.type === 'var') return [t.name];
  if (t.type !== 'ref' || t.head.type !== 'var') return undefined;
  const out = [t.head.name];
  for (const p of t.path) {
    if (p.type !== 'string') return undefined;
    out.push(p.value);
  }
  return out;
}

/** Rego text of a ref, for messages (`data.a.b[x]`). */
export function refString(t: Term): string {
  if (t.type === 'var') return t.name;
  if (t.type === 'ref') {
    let s = refString(t.head);
    for (const p of t.path) {
      if (p.type === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(p.value)) s += `.${p.value}`;
      else s += `[${termString(p)}]`;
    }
    return s;
  }
  return termString(t);
}

export function termString(t: Term): string {
  switch (t.type) {
    case 'null':
      return 'null';
    case 'boolean':
      return String(t.value);
    case 'number':
      return t.text;
    case 'string':
      return JSON.stringify(t.value);
    case 'var':
      return t.name;
    case 'ref':
      return refString(t);
    case 'array':
      return `[${t.items.map(termString).join(', ')}]`;
    case 'set':
      return t.items.length ? `{${t.items.map(termString).join(', ')}}` : 'set()';
    case 'object':
      return `{${t.entries.map(([k, v]) => `${termString(k)}: ${termString(v)}`).join(', ')}}`;
    case 'call':
      return `${refString(t.op)}(${t.args.map(termString).join(', ')})`;
    case 'arraycomp':
      return `[${termString(t.term)} | ...]`;
    case 'setcomp':
      return `{${termString(t.term)} | ...}`;
    case 'objectcomp':
      return `{${termString(t.key)}: ${termString(t.value)} | ...}`;
    case 'template':
      return '$"..."';
  }
}

export function isPatternTerm(t: Term): boolean {
  switch (t.type) {
    case 'var':
    case 'null':
    case 'boolean':
    case 'number':
    case 'string':
      return true;
    case 'array':
      return t.items.every(isPatternTerm);
    case 'object':
      return t.entries.every(([k, v]) => isConstant(k) && isPatternTerm(v));
    default:
      return false;
  }
}

export function isConstant(t: Term): boolean {
  switch (t.type) {
    case 'null':
    case 'boolean':
    case 'number':
    case 'string':
      return true;
    case 'array':
    case 'set':
      return t.items.every(isConstant);
    case 'object':
      return t.entries.every(([k, v]) => isConstant(k) && isConstant(v));
    default:
      return false;
  }
}


export function forClosures(t: Term, fn: (c: Term) => void): void {
  switch (t.type) {
    case 'arraycomp':
    case 'setcomp':
    case 'objectcomp':
    case 'template':
      fn(t);
      return;
    case 'ref':
      forClosures(t.head, fn);
      t.path.forEach((p) => forClosures(p, fn));
      return;
    case 'call':
      t.args.forEach((a) => forClosures(a, fn));
      return;
    case 'array':
    case 'set':
      t.items.forEach((x) => forClosures(x, fn));
      return;
    case 'object':
      t.entries.forEach(([k, v]) => {
        forClosures(k, fn);
        forClosures(v, fn);
      });
      return;
    default:
      return;
  }
}
