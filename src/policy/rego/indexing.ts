/**
 * Rule indexing (as OPA's rule index): definitions that test `input.<path> == constant` are
 * bucketed by that constant, so a decision evaluates only the matching ones.
 */
import type { Expr, Term } from './ast.ts';
import type { Cond } from './conds.ts';
import { type RuleDef, type RuleIndex, lookupPath } from './runtime.ts';
import { type Value, keyOf, numberFromText } from './value.ts';

/**
 * Index of rule definitions on the `input.<path> == constant` test most of them share: a
 * decision evaluates only the definitions whose constant equals the input's value.
 */
export function buildRuleIndex(defs: RuleDef[]): RuleIndex | undefined {
  {
    if (defs.length < 4) return undefined;
    const counts = new Map<string, number>();
    for (const d of defs) if (d.index) counts.set(d.index.path.join('\u0000'), (counts.get(d.index.path.join('\u0000')) ?? 0) + 1);
    let best: string | undefined;
    let bestN = 0;
    for (const [p, n] of counts) if (n > bestN) [best, bestN] = [p, n];
    if (best === undefined || bestN < 2) return undefined;
    const indexed = new Map<string, RuleDef[]>();
    const unindexed: RuleDef[] = [];
    for (const d of defs) {
      if (d.index && d.index.path.join('\u0000') === best) {
        const list = indexed.get(d.index.key) ?? [];
        list.push(d);
        indexed.set(d.index.key, list);
        // Reached only through its bucket: the indexed equality already holds.
        if (d.quick) d.quick = { conds: withoutIndexCond(d.quick.conds, d.index), value: d.quick.value };
      } else unindexed.push(d);
    }
    return { path: best.split('\u0000'), indexed, unindexed };
  }
}

export function candidates(index: RuleIndex, input: Value | undefined): RuleDef[] {
  const v = lookupPath(input, index.path);
  const hit = v === undefined || (typeof v === 'object' && v !== null) ? undefined : index.indexed.get(keyOf(v));
  return hit ? (index.unindexed.length ? [...hit, ...index.unindexed] : hit) : index.unindexed;
}

export function withoutIndexCond(conds: readonly Cond[], index: { path: readonly string[]; key: string }): readonly Cond[] {
  const isIndexCond = (c: Cond): boolean => {
    if (c.k !== 0 || c.op !== 0) return false;
    const [p, k] = c.a.k === 1 && c.b.k === 0 ? [c.a, c.b] : c.b.k === 1 && c.a.k === 0 ? [c.b, c.a] : [undefined, undefined];
    return p !== undefined && k !== undefined && p.k === 1 && k.k === 0 && p.path.join('\u0000') === index.path.join('\u0000') && keyOf(k.v) === index.key;
  };
  const i = conds.findIndex(isIndexCond);
  return i < 0 ? conds : [...conds.slice(0, i), ...conds.slice(i + 1)];
}

/** `input.a.b == "const"` (either side) as an index entry. */
export function findIndex(body: Expr[]): RuleDef['index'] | undefined {
  for (const e of body) {
    if (e.kind !== 'term' || e.negated || e.with.length) continue;
    const t = e.term;
    if (t.type !== 'call' || t.op.type !== 'var' || !['equal', 'eq'].includes(t.op.name)) continue;
    const [a, b] = t.args as [Term, Term];
    const pair = inputPath(a) && scalarKey(b) ? [inputPath(a)!, scalarKey(b)!] : inputPath(b) && scalarKey(a) ? [inputPath(b)!, scalarKey(a)!] : undefined;
    if (pair) return { path: pair[0] as string[], key: pair[1] as string };
  }
  return undefined;
}

export function inputPath(t: Term): string[] | undefined {
  if (t.type !== 'ref' || t.head.type !== 'var' || t.head.name !== 'input') return undefined;
  const out: string[] = [];
  for (const p of t.path) {
    if (p.type !== 'string') return undefined;
    out.push(p.value);
  }
  return out;
}

export function scalarKey(t: Term): string | undefined {
  if (t.type === 'string') return keyOf(t.value);
  if (t.type === 'number') return keyOf(numberFromText(t.text));
  if (t.type === 'boolean') return keyOf(t.value);
  if (t.type === 'null') return keyOf(null);
  return undefined;
}
