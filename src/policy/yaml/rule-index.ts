/**
 * Finds the rules that can match a request without evaluating every rule: rules are filed under
 * their exact paths, the whole leading segments of their path prefixes/templates (`/api/v1` for
 * `/api/v1/*`; a request looks up each of its own leading-segment prefixes), or their exact
 * source principals; the rest are always candidates. A candidate is then fully evaluated, so the index
 * only ever narrows (never decides). This keeps 10,000 rules at a handful of evaluations.
 */
import type { MatchAuth, MatchFacts, Matcher } from './request.ts';
import type { IndexKeys } from './rule.ts';

export interface IndexedRule<P> {
  policy: P;
  rule: number;
  match: Matcher;
  /** Load order, so results are reported deterministically (first policy in the config wins). */
  ordinal: number;
}

/** Keys are unique per rule (deduplicated when compiled), so no per-push duplicate check. */
function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The lower-ordinal of `best` and the first accepted match in `list` below it. */
function better<P>(list: IndexedRule<P>[] | undefined, facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean, best: IndexedRule<P> | undefined): IndexedRule<P> | undefined {
  if (!list) return best;
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (best && e.ordinal >= best.ordinal) continue;
    if (accept(e.policy) && e.match(facts, auth)) best = e;
  }
  return best;
}

export class RuleIndex<P> {
  readonly #exactPath = new Map<string, IndexedRule<P>[]>();
  readonly #prefix = new Map<string, IndexedRule<P>[]>();
  readonly #principal = new Map<string, IndexedRule<P>[]>();
  readonly #rest: IndexedRule<P>[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(entry: IndexedRule<P>, keys: IndexKeys): void {
    this.#size++;
    switch (keys.kind) {
      case 'path':
        for (const p of keys.exact) push(this.#exactPath, p, entry);
        for (const s of keys.prefixes) push(this.#prefix, s, entry);
        return;
      case 'principal':
        for (const p of keys.values) push(this.#principal, p, entry);
        return;
      case 'none':
        this.#rest.push(entry);
    }
  }

  /** The matching rule with the lowest ordinal, or undefined. Closure-free: this is the hot path. */
  first(facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean): IndexedRule<P> | undefined {
    let best = better(this.#exactPath.get(facts.path), facts, auth, accept, undefined);
    if (this.#prefix.size > 0) {
      const path = facts.path;
      for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) best = better(this.#prefix.get(path.slice(0, i)), facts, auth, accept, best);
    }
    if (facts.sourcePrincipal !== undefined && this.#principal.size > 0) best = better(this.#principal.get(facts.sourcePrincipal), facts, auth, accept, best);
    return better(this.#rest, facts, auth, accept, best);
  }

  /** Scans the rules filed under each leading-segment prefix of `path` (`/a`, `/a/b`, ...). */
  #scanPrefixes(path: string, scan: (list: IndexedRule<P>[] | undefined) => void): void {
    for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) scan(this.#prefix.get(path.slice(0, i)));
  }

  /** Every matching rule, in ordinal order, at most one per policy (AUDIT and dry-run reporting). */
  all(facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean): IndexedRule<P>[] {
    const found = new Map<P, IndexedRule<P>>();
    const scan = (list: IndexedRule<P>[] | undefined) => {
      if (!list) return;
      for (const e of list) {
        const prev = found.get(e.policy);
        if (prev && prev.ordinal <= e.ordinal) continue;
        if (accept(e.policy) && e.match(facts, auth)) found.set(e.policy, e);
      }
    };
    scan(this.#exactPath.get(facts.path));
    if (this.#prefix.size > 0) this.#scanPrefixes(facts.path, scan);
    if (facts.sourcePrincipal !== undefined && this.#principal.size > 0) scan(this.#principal.get(facts.sourcePrincipal));
    scan(this.#rest);
    return [...found.values()].sort((a, b) => a.ordinal - b.ordinal);
  }
}
