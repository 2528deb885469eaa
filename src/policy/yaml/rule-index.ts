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

  /**
   * Every matching rule, in ordinal order, at most one per policy (AUDIT and dry-run reporting).
   * Closure-free like `first`: it runs on every check of a workload with an AUDIT policy.
   */
  all(facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean): IndexedRule<P>[] {
    const found = new AllMatches<P>();
    found.scan(this.#exactPath.get(facts.path), facts, auth, accept);
    if (this.#prefix.size > 0) {
      const path = facts.path;
      for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) found.scan(this.#prefix.get(path.slice(0, i)), facts, auth, accept);
    }
    if (facts.sourcePrincipal !== undefined && this.#principal.size > 0) found.scan(this.#principal.get(facts.sourcePrincipal), facts, auth, accept);
    found.scan(this.#rest, facts, auth, accept);
    return found.sorted();
  }
}

/** Few matches are the rule: a list searched by policy, and a Map only once there are many. */
const LINEAR_MATCHES = 16;

const byOrdinal = (a: { ordinal: number }, b: { ordinal: number }) => a.ordinal - b.ordinal;

/** The lowest-ordinal matching rule per policy, collected over several candidate lists. */
class AllMatches<P> {
  readonly #list: IndexedRule<P>[] = [];
  #byPolicy?: Map<P, number>;

  scan(list: IndexedRule<P>[] | undefined, facts: MatchFacts, auth: MatchAuth | undefined, accept: (p: P) => boolean): void {
    if (!list) return;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const at = this.#indexOf(e.policy);
      if (at >= 0 && this.#list[at]!.ordinal <= e.ordinal) continue;
      if (!accept(e.policy) || !e.match(facts, auth)) continue;
      if (at >= 0) this.#list[at] = e;
      else this.#add(e);
    }
  }

  sorted(): IndexedRule<P>[] {
    return this.#list.length > 1 ? this.#list.sort(byOrdinal) : this.#list;
  }

  #indexOf(policy: P): number {
    if (this.#byPolicy) return this.#byPolicy.get(policy) ?? -1;
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]!.policy === policy) return i;
    return -1;
  }

  #add(e: IndexedRule<P>): void {
    this.#list.push(e);
    if (this.#byPolicy) this.#byPolicy.set(e.policy, this.#list.length - 1);
    else if (this.#list.length > LINEAR_MATCHES) this.#byPolicy = new Map(this.#list.map((x, i) => [x.policy, i]));
  }
}
