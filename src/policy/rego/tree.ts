/**
 * The rule tree at evaluation time: the document at a node is its rules' value merged with the
 * base data under it, cached per evaluation on the node itself; functions are called by node.
 */
import type { RegoLocation } from './errors.ts';
import { RegoEvalError } from './errors.ts';
import { tick } from './budget.ts';
import { compileConds } from './conds.ts';
import { IN_PROGRESS, mergeBaseWins } from './exec.ts';
import { candidates } from './indexing.ts';
import {
  DocBuilder,
  type EvalCtx,
  type Frame,
  type RuleDef,
  type RuleNode,
  conflict,
  indexValue,
  lookupPath,
  newNode,
  patchPath,
} from './runtime.ts';
import { RegoSet, type Value, equals, isObject, keyOf, objectEntries, objectGet } from './value.ts';

export class RuleTree {
  readonly root: RuleNode = newNode([]);
  /** Nodes defined by functions. */
  readonly fnNodes = new Set<RuleNode>();
  /** Nodes with rules of their own (not functions), known before bodies compile. */
  readonly virtualNodes = new Set<RuleNode>();
  /** Nodes with var-key ref-head rules: their documents cover descendants too. */
  readonly objectNodes = new Set<RuleNode>();

  nodeAt(path: readonly string[]): RuleNode | undefined {
    let node: RuleNode | undefined = this.root;
    for (const p of path) {
      node = node.children.get(p);
      if (!node) return undefined;
    }
    return node;
  }

  /** The value of the document at a rule node (rules merged with base data), cached per evaluation. */
  docAt(node: RuleNode, c: EvalCtx): Value | undefined {
    const inputValue = node.inputValue;
    if (inputValue !== undefined) return inputValue(c.input);
    if (node.epoch === c.epoch) {
      const hit = node.cached;
      if (hit === IN_PROGRESS) throw new RegoEvalError('rego_recursion_error', `rule data.${node.path.join('.')} is recursive`, node.complete[0]?.loc ?? node.objects[0]?.loc ?? { file: '', line: 0, col: 0 });
      return hit;
    }
    node.epoch = c.epoch;
    node.cached = IN_PROGRESS;
    (c.touched ??= []).push(node);
    let v: Value | undefined;
    try {
      v = this.evalTop(node, c);
    } catch (err) {
      node.epoch = 0;
      node.cached = undefined;
      throw err;
    }
    // A nested `with` scope may have used the slot meanwhile: store this evaluation's value again.
    node.epoch = c.epoch;
    node.cached = v;
    return v;
  }

  /**
   * The document at a node, without caching it: for the entrypoint of a decision, which nothing
   * else in the same evaluation can ask for (that would be recursion, rejected at compile time).
   */
  evalTop(node: RuleNode, c: EvalCtx): Value | undefined {
    if (node.complete.length || (node.defaults.length && !this.fnNodes.has(node))) return this.#evalComplete(node, c);
    if (this.fnNodes.has(node)) return undefined;
    if (node.multi.length && !node.objects.length && node.children.size === 0) return this.#evalMulti(node, c);
    return this.#evalObject(node, c);
  }

  #completeCandidates(node: RuleNode, c: EvalCtx): RuleDef[] {
    if (!node.indexed) return node.complete;
    const v = lookupPath(c.input, node.indexPath!);
    const hit = v === undefined || (typeof v === 'object' && v !== null) ? undefined : node.indexed.get(keyOf(v));
    return hit ? (node.unindexed!.length ? [...hit, ...node.unindexed!] : hit) : node.unindexed!;
  }

  #evalComplete(node: RuleNode, c: EvalCtx): Value | undefined {
    let result: Value | undefined;
    let frame: Frame | undefined;
    for (const def of this.#completeCandidates(node, c)) {
      const quick = def.quick;
      if (quick) {
        frame ??= { s: [], c };
        if (!(quick.test ??= compileConds(quick.conds))(frame)) continue;
        if (result === undefined) result = quick.value;
        else if (!equals(result, quick.value)) throw conflict('complete rules must not produce multiple outputs', def.loc);
        continue;
      }
      const direct = def.direct;
      if (direct) {
        const v = direct(c);
        if (v === undefined) continue;
        if (result === undefined) result = v;
        else if (!equals(result, v)) throw conflict('complete rules must not produce multiple outputs', def.loc);
        continue;
      }
      def.eval(c, undefined, (_keys, v) => {
        if (result === undefined) result = v;
        else if (!equals(result, v)) throw conflict('complete rules must not produce multiple outputs', def.loc);
        return def.constValue;
      });
    }
    if (result === undefined) {
      for (const def of node.defaults) {
        // `default p := <constant>`: no body to run.
        if (def.quick) {
          result = def.quick.value;
          continue;
        }
        def.eval(c, undefined, (_keys, v) => {
          result = v;
          return true;
        });
      }
    }
    return result;
  }

  #evalMulti(node: RuleNode, c: EvalCtx): Value {
    const out = new RegoSet();
    for (const def of node.multiIndex ? candidates(node.multiIndex, c.input) : node.multi) {
      def.eval(c, undefined, (_keys, v) => {
        out.add(v);
        return false;
      });
    }
    return out;
  }

  #evalObject(node: RuleNode, c: EvalCtx): Value {
    const base = lookupPath(c.data, node.path);
    const baseObj = base !== undefined && isObject(base) ? base : undefined;
    const b = new DocBuilder();
    const merged = new Set<string>();
    for (const child of node.children.values()) {
      if (this.fnNodes.has(child)) continue;
      let v = this.docAt(child, c);
      // Base data wins where it overlaps a rule (OPA reads the base document first).
      const bv = baseObj ? objectGet(baseObj, child.name) : undefined;
      if (bv !== undefined) {
        v = v !== undefined ? mergeBaseWins(bv, v) : bv;
        merged.add(child.name);
      }
      if (v !== undefined) b.put([child.name], v, child.complete[0]?.loc ?? { file: '', line: 0, col: 0 });
    }
    if (baseObj) {
      for (const [k, v] of objectEntries(baseObj)) if (!(typeof k === 'string' && merged.has(k))) b.put([k], v, { file: '', line: 0, col: 0 });
    }
    for (const def of node.objects) {
      def.eval(c, undefined, (keys, v) => {
        if (def.kind === 'multi') b.add(keys, v, def.loc);
        else b.put(keys, v, def.loc);
        return false;
      });
    }
    if (node.multi.length) {
      // A node with both a set rule and other rules: OPA reports a conflict at compile time.
      throw new RegoEvalError('eval_conflict_error', 'multi-value rule conflicts with other rules', node.multi[0]!.loc);
    }
    return b.build();
  }

  callFunction(node: RuleNode, args: Value[], c: EvalCtx, _loc: RegoLocation): Value | undefined {
    // A unit of the evaluation budget: deep chains of function calls are loops too.
    tick();
    let result: Value | undefined;
    for (const def of node.functions) {
      def.eval(c, args, (_keys, v) => {
        if (result === undefined) result = v;
        else if (!equals(result, v)) throw conflict('functions must not produce multiple outputs for same inputs', def.loc);
        return def.constValue;
      });
    }
    if (result === undefined) {
      for (const def of node.defaults) {
        def.eval(c, args, (_keys, v) => {
          result = v;
          return true;
        });
      }
    }
    return result;
  }

  resolveDynamic(c: EvalCtx, prefix: readonly string[], start: RuleNode, keys: Value[]): Value | undefined {
    let node = start;
    const path = [...prefix];
    let i = 0;
    for (; i < keys.length; i++) {
      const k = keys[i]!;
      const name = typeof k === 'string' ? k : typeof k === 'number' && Number.isInteger(k) && k >= 0 ? String(k) : undefined;
      if (name === undefined || this.virtualNodes.has(node)) break;
      const child = node.children.get(name);
      if (!child) break;
      node = child;
      path.push(name);
    }
    let v: Value | undefined;
    if (i < keys.length && !this.virtualNodes.has(node)) {
      const name = keys[i];
      if (typeof name !== 'string' && !(typeof name === 'number' && Number.isInteger(name))) return undefined;
      path.push(String(name));
      i++;
      v = c.overrides ? this.resolveOverridden(c, path, node, true) : lookupPath(c.data, path);
    } else v = c.overrides ? this.resolveOverridden(c, path, node, false) : this.docAt(node, c);
    for (; i < keys.length && v !== undefined; i++) v = indexValue(v, keys[i]!);
    return v;
  }

  resolveOverridden(c: EvalCtx, prefix: readonly string[], node: RuleNode, baseOnly: boolean): Value | undefined {
    const overrides = c.overrides!;
    for (let i = overrides.length - 1; i >= 0; i--) {
      const o = overrides[i]!;
      if (o.path.length <= prefix.length && o.path.every((p, j) => p === prefix[j])) {
        return lookupPath(o.value, prefix, o.path.length);
      }
    }
    let v = baseOnly ? lookupPath(c.data, prefix) : this.docAt(node, c);
    for (const o of overrides) {
      if (o.path.length > prefix.length && prefix.every((p, j) => p === o.path[j])) {
        v = patchPath(v, o.path.slice(prefix.length), o.value);
      }
    }
    return v;
  }
}
