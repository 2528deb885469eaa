/**
 * Finds the rules that can match a request without evaluating every rule: rules are filed under
 * their exact paths, the first segment of their path prefixes/templates, or their exact source
 * principals; the rest are always candidates. A candidate is then fully evaluated, so the index
 * only ever narrows (never decides). This keeps 10,000 rules at a handful of evaluations.
 */
import type { MatchAuth, MatchFacts, Matcher } from './request.ts';
import { firstSegment, type IndexKeys } from './rule.ts';

export interface IndexedRule<P> {
  policy: P;
  rule: number;
  match: Matcher;
  /** Load order, so results are reported deterministically (first policy in the config wins). */
  ordinal: number;
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) {
    if (!list.includes(value)) list.push(value);
  } else {
    map.set(key, [value]);
  }
}

export class RuleIndex<P> {
  readonly #exactPath = new Map<string, IndexedRule<P>[]>();
  readonly #firstSegment = new Map<string, IndexedRule<P>[]>();
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
        for (const s of keys.firstSegments) push(this.#firstSegment, s, entry);
        return;
      case 'principal':
        for (const p of keys.values) push(this.#principal, p, entry);
        return;
      case 'none':
        this.#rest.push(entry);
    }
  }

  /** The matching rule with the lowest ordinal, or undefined. */
  first(facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean): IndexedRule<P> | undefined {
    let best: IndexedRule<P> | undefined;
    const scan = (list: IndexedRule<P>[] | undefined) => {
      if (!list) return;
      for (const e of list) {
        if (best && e.ordinal >= best.ordinal) continue;
        if (accept(e.policy) && e.match(facts, auth)) best = e;
      }
    };
    scan(this.#exactPath.get(facts.path));
    if (this.#firstSegment.size > 0) scan(this.#firstSegment.get(firstSegment(facts.path)));
    if (facts.sourcePrincipal !== undefined && this.#principal.size > 0) scan(this.#principal.get(facts.sourcePrincipal));
    scan(this.#rest);
    return best;
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
    if (this.#firstSegment.size > 0) scan(this.#firstSegment.get(firstSegment(facts.path)));
    if (facts.sourcePrincipal !== undefined && this.#principal.size > 0) scan(this.#principal.get(facts.sourcePrincipal));
    scan(this.#rest);
    return [...found.values()].sort((a, b) => a.ordinal - b.ordinal);
  }
}
