/**
 * Runtime helpers of compiled bodies. They are module-level functions, not closures created per
 * call: nothing to allocate, and under tsx's keepNames transform no defineProperty per closure.
 */
import { tick } from './budget.ts';
import type { BuiltinDefinition } from './builtins/index.ts';
import { type Frame, type Gen, type K, type Step, type Val, indexValue, iterate } from './runtime.ts';
import { type PlainObject, type RegoObject, RegoSet, type Value, isObject, keyOf, makeObject, objectEntries, objectGet } from './value.ts';

export const NO_KEYS: Value[] = [];

export type Matcher = (f: Frame, v: Value, k: K) => boolean;

export interface Alt {
  body: Step;
  keys: Val[];
  value: Val | Gen;
  isVal: boolean;
}

export type Indexer = { key?: Val; field?: string; step?: (f: Frame, x: Value, k: (v: Value) => boolean) => boolean };

export function runAlts(alts: readonly Alt[], f: Frame, onValue: (keys: Value[], value: Value) => boolean): boolean {
  for (const alt of alts) {
    let found = false;
    const stop = alt.body(f, () => {
      let ks = NO_KEYS;
      if (alt.keys.length) {
        ks = [];
        for (const kv of alt.keys) {
          const x = kv(f);
          if (x === undefined) return false;
          ks.push(x);
        }
      }
      if (alt.isVal) {
        const v = (alt.value as Val)(f);
        if (v === undefined) return false;
        found = true;
        return onValue(ks, v);
      }
      return (alt.value as Gen)(f, (v) => {
        found = true;
        return onValue(ks, v);
      });
    });
    if (stop || found) return stop;
  }
  return false;
}

export function matchParams(params: readonly Matcher[], args: Value[], i: number, f: Frame, alts: readonly Alt[], onValue: (keys: Value[], value: Value) => boolean): boolean {
  if (i === params.length) return runAlts(alts, f, onValue);
  return params[i]!(f, args[i]!, () => matchParams(params, args, i + 1, f, alts, onValue));
}

export function genCollection(gens: readonly Gen[], out: Value[], i: number, f: Frame, k: (v: Value) => boolean, make: (vs: Value[]) => Value): boolean {
  if (i === gens.length) return k(make(out));
  return gens[i]!(f, (v) => {
    out[i] = v;
    return genCollection(gens, out, i + 1, f, k, make);
  });
}

export function matchArray(ms: readonly Matcher[], v: Value[], i: number, f: Frame, k: K): boolean {
  if (i === ms.length) return k();
  return ms[i]!(f, v[i]!, () => matchArray(ms, v, i + 1, f, k));
}

export function matchObject(keys: readonly Val[], ms: readonly Matcher[], v: PlainObject | RegoObject, i: number, f: Frame, k: K): boolean {
  if (i === ms.length) return k();
  const key = keys[i]!(f);
  if (key === undefined) return false;
  const x = objectGet(v, key);
  return x === undefined ? false : ms[i]!(f, x, () => matchObject(keys, ms, v, i + 1, f, k));
}

export function indexSteps(steps: readonly Indexer[], i: number, y: Value, f: Frame, k: (v: Value) => boolean): boolean {
  if (i === steps.length) return k(y);
  const s = steps[i]!;
  if (s.key) {
    const key = s.key(f);
    if (key === undefined) return false;
    const v = indexValue(y, key);
    return v === undefined ? false : indexSteps(steps, i + 1, v, f, k);
  }
  return s.step!(f, y, (v) => indexSteps(steps, i + 1, v, f, k));
}

export function genCall(
  gens: readonly Gen[],
  order: readonly number[],
  xs: Value[],
  j: number,
  f: Frame,
  k: (v: Value) => boolean,
  invoke: (f: Frame, vals: Value[]) => Value | undefined,
): boolean {
  if (j === gens.length) {
    const r = invoke(f, xs.slice());
    return r === undefined ? false : k(r);
  }
  const i = order[j] ?? j;
  return gens[i]!(f, (v) => {
    xs[i] = v;
    return genCall(gens, order, xs, j + 1, f, k, invoke);
  });
}

export const WALK: BuiltinDefinition = {
  name: 'walk',
  decl: { args: [{ kind: 'any' }], result: { kind: 'array', of: { kind: 'any' } } },
  fn: () => undefined,
};

/** Pre-order walk calling k([path, value]) for every node. */
export function walkValue(x: Value, path: Value[], k: (v: Value) => boolean): boolean {
  tick();
  if (k([path.slice(), x])) return true;
  return iterate(x, (key, v) => {
    path.push(key);
    const stop = walkValue(v, path, k);
    path.pop();
    return stop;
  });
}

/** Marks a document being computed (recursion through dynamic refs). */
export const IN_PROGRESS: Value = Object.freeze(new RegoSet()) as Value;

/** Deep merge of two documents where the base document wins on conflicting leaves. */
export function mergeBaseWins(base: Value, virtual: Value): Value {
  if (!isObject(base) || !isObject(virtual)) return base;
  const entries = new Map<string, [Value, Value]>();
  for (const [k, v] of objectEntries(virtual)) entries.set(keyOf(k), [k, v]);
  for (const [k, v] of objectEntries(base)) {
    const prev = entries.get(keyOf(k));
    entries.set(keyOf(k), [k, prev ? mergeBaseWins(v, prev[1]) : v]);
  }
  return makeObject(entries.values());
}
