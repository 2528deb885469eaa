/**
 * Variable scopes of rule bodies. Every local variable gets a slot in its rule's frame; closures
 * (comprehensions, `every` bodies) get a child scope that shares the frame and sees the
 * enclosing body's variables. `_` is a fresh slot at each occurrence.
 */
import type { Expr, Term } from './ast.ts';

export class Scope {
  readonly #vars = new Map<string, number>();
  readonly parent: Scope | undefined;
  readonly #alloc: { n: number };

  constructor(parent?: Scope) {
    this.parent = parent;
    this.#alloc = parent ? parent.#alloc : { n: 0 };
  }

  get size(): number {
    return this.#alloc.n;
  }

  fresh(): number {
    return this.#alloc.n++;
  }

  declare(name: string): number {
    let slot = this.#vars.get(name);
    if (slot === undefined) {
      slot = this.fresh();
      this.#vars.set(name, slot);
    }
    return slot;
  }

  own(name: string): number | undefined {
    return this.#vars.get(name);
  }

  lookup(name: string): number | undefined {
    return this.#vars.get(name) ?? this.parent?.lookup(name);
  }

  /** Named variables of this scope (for query results). */
  names(): [string, number][] {
    return [...this.#vars.entries()];
  }
}

/** Calls fn for each var term in t, not descending into closures. */
export function visitVars(t: Term, fn: (v: Extract<Term, { type: 'var' }>) => void): void {
  switch (t.type) {
    case 'var':
      fn(t);
      return;
    case 'ref':
      visitVars(t.head, fn);
      for (const p of t.path) visitVars(p, fn);
      return;
    case 'array':
    case 'set':
      for (const x of t.items) visitVars(x, fn);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        visitVars(k, fn);
        visitVars(v, fn);
      }
      return;
    case 'call':
      for (const a of t.args) visitVars(a, fn);
      return;
    default:
      return;
  }
}

/** Var terms of an expression outside closures (with targets excluded, their values included). */
export function exprVars(e: Expr, fn: (v: Extract<Term, { type: 'var' }>) => void, withValues = true): void {
  switch (e.kind) {
    case 'term':
      visitVars(e.term, fn);
      break;
    case 'some':
      for (const v of e.vars) visitVars(v, fn);
      break;
    case 'somein':
      if (e.key) visitVars(e.key, fn);
      visitVars(e.value, fn);
      visitVars(e.domain, fn);
      break;
    case 'every':
      visitVars(e.domain, fn);
      break;
  }
  if (withValues) for (const w of e.with) visitVars(w.value, fn);
}

/** Closures directly inside a term (comprehensions, templates). */
export function visitClosures(t: Term, fn: (c: Term) => void): void {
  switch (t.type) {
    case 'arraycomp':
    case 'setcomp':
    case 'objectcomp':
    case 'template':
      fn(t);
      return;
    case 'ref':
      visitClosures(t.head, fn);
      for (const p of t.path) visitClosures(p, fn);
      return;
    case 'array':
    case 'set':
      for (const x of t.items) visitClosures(x, fn);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        visitClosures(k, fn);
        visitClosures(v, fn);
      }
      return;
    case 'call':
      for (const a of t.args) visitClosures(a, fn);
      return;
    default:
      return;
  }
}

/** Every var term in a term, descending into closures (strict-mode usage counts). */
export function deepTermVars(t: Term, fn: (v: Extract<Term, { type: 'var' }>) => void): void {
  switch (t.type) {
    case 'var':
      fn(t);
      return;
    case 'ref':
      deepTermVars(t.head, fn);
      for (const p of t.path) deepTermVars(p, fn);
      return;
    case 'array':
    case 'set':
      for (const x of t.items) deepTermVars(x, fn);
      return;
    case 'object':
      for (const [k, v] of t.entries) {
        deepTermVars(k, fn);
        deepTermVars(v, fn);
      }
      return;
    case 'call':
      deepTermVars(t.op, fn);
      for (const a of t.args) deepTermVars(a, fn);
      return;
    case 'arraycomp':
    case 'setcomp':
      deepTermVars(t.term, fn);
      for (const e of t.body) deepExprVars(e, fn);
      return;
    case 'objectcomp':
      deepTermVars(t.key, fn);
      deepTermVars(t.value, fn);
      for (const e of t.body) deepExprVars(e, fn);
      return;
    case 'template':
      for (const p of t.parts) if (typeof p !== 'string') deepExprVars(p, fn);
      return;
    default:
      return;
  }
}

export function deepExprVars(e: Expr, fn: (v: Extract<Term, { type: 'var' }>) => void): void {
  switch (e.kind) {
    case 'term':
      deepTermVars(e.term, fn);
      break;
    case 'some':
      for (const v of e.vars) deepTermVars(v, fn);
      break;
    case 'somein':
      if (e.key) deepTermVars(e.key, fn);
      deepTermVars(e.value, fn);
      deepTermVars(e.domain, fn);
      break;
    case 'every':
      if (e.key) deepTermVars(e.key, fn);
      deepTermVars(e.value, fn);
      deepTermVars(e.domain, fn);
      for (const x of e.body) deepExprVars(x, fn);
      break;
  }
  for (const w of e.with) {
    deepTermVars(w.target, fn);
    deepTermVars(w.value, fn);
  }
}

/** Names an expression declares with `:=`, `some x` or `some x in`. */
export function explicitNames(e: Expr): Set<string> {
  const out = new Set<string>();
  const add = (t: Term) => visitVars(t, (v) => v.name !== '_' && out.add(v.name));
  if (e.kind === 'some') e.vars.forEach(add);
  if (e.kind === 'somein') {
    if (e.key) add(e.key);
    add(e.value);
  }
  if (e.kind === 'term' && e.term.type === 'call' && e.term.op.type === 'var' && e.term.op.name === 'assign') add(e.term.args[0]!);
  return out;
}
