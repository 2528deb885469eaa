/**
 * The evaluator's runtime: evaluation context, frames, the rule tree and the virtual documents
 * it produces. Compiled bodies are closures in continuation-passing style: a step gets the frame
 * and a continuation, calls the continuation once per solution (after binding its variables)
 * and returns true when evaluation must stop (the caller found what it needed).
 */
import type { BuiltinContext } from './builtins/index.ts';
import type { Loc } from './ast.ts';
import { charge, tick } from './budget.ts';
import { RegoEvalError } from './errors.ts';
import {
  RegoSet,
  type PlainObject,
  type Value,
  equals,
  formatValue,
  isObject,
  isSet,
  keyOf,
  makeObject,
  objectEntries,
  objectGet,
  RegoObject,
  compareStrings,
} from './value.ts';

export type Slots = (Value | undefined)[];

export interface Frame {
  s: Slots;
  c: EvalCtx;
}

/** Continuation: returns true to stop the search. */
export type K = () => boolean;
/** A body step (or whole body). */
export type Step = (f: Frame, k: K) => boolean;
/** A term generator: calls k once per value of the term (binding variables on the way). */
export type Gen = (f: Frame, k: (v: Value) => boolean) => boolean;
/** A term evaluable without search; undefined means undefined. */
export type Val = (f: Frame) => Value | undefined;

/** `with data.a.b as v` in effect. */
export interface DataOverride {
  path: readonly string[];
  value: Value;
}

/** `with f as g` / `with f as value` in effect (key: full function name). */
export type Mock = { kind: 'value'; value: Value } | { kind: 'function'; call: FunctionCall };

export type FunctionCall = (c: EvalCtx, args: Value[], loc: Loc) => Value | undefined;

export interface BuiltinOptions {
  strictBuiltinErrors?: boolean;
  print?: (text: string) => void;
  now?: bigint;
  /** Evaluation time in ms since the epoch, used when `now` is not given. */
  nowMs?: number;
  seed?: number;
}

const discard = (): void => {};

let epochs = 0;

/**
 * One evaluation's state: input, data, `with` overrides and mocks, the document cache and the
 * built-in context. The cache and built-in context are created on first use: a decision that
 * needs neither allocates neither.
 */
/**
 * `time.now_ns()` for a clock reading in ms (the wall clock when absent), at microsecond precision:
 * ms * 1000 stays a safe integer. Shared with the wasm engine's host built-ins.
 */
export function clockNanos(nowMs?: number): bigint {
  return nowMs !== undefined ? BigInt(Math.round(nowMs * 1000)) * 1000n : BigInt(Date.now()) * 1_000_000n;
}

export class EvalCtx implements BuiltinContext {
  readonly input: Value | undefined;
  readonly data: Value;
  readonly overrides: readonly DataOverride[] | undefined;
  readonly mocks: ReadonlyMap<string, Mock> | undefined;
  readonly strict: boolean;
  readonly #options: BuiltinOptions | undefined;
  /**
   * Identifies this evaluation for the document cache, which lives on the rule nodes themselves
   * (`node.epoch === ctx.epoch` means `node.cached` is this evaluation's value): no Map per
   * decision. Evaluation is synchronous, so evaluations never interleave.
   */
  readonly epoch: number = ++epochs;
  /** Nodes whose cache slot this evaluation filled (cleared at the end: no request data lingers). */
  touched: RuleNode[] | undefined;
  /** A `with` scope's context shares its parent's clock and built-in cache; undefined: this one's. */
  readonly #bctx: BuiltinContext | undefined;
  #now: bigint | undefined;
  #cache: Map<string, unknown> | undefined;

  constructor(
    input: Value | undefined,
    data: Value,
    options: BuiltinOptions | undefined,
    overrides?: readonly DataOverride[],
    mocks?: ReadonlyMap<string, Mock>,
    bctx?: BuiltinContext,
  ) {
    this.input = input;
    this.data = data;
    this.#options = options;
    this.strict = options?.strictBuiltinErrors ?? false;
    this.overrides = overrides;
    this.mocks = mocks;
    this.#bctx = bctx;
  }

  /**
   * The built-in context: the evaluation context itself (clock and cache created when a built-in
   * asks), so a decision calling built-ins allocates no separate context object.
   */
  get bctx(): BuiltinContext {
    return this.#bctx ?? this;
  }

  now(): bigint {
    // Fixed for the whole evaluation, as OPA's time.now_ns.
    if (this.#now === undefined) {
      const o = this.#options;
      this.#now = o?.now ?? clockNanos(o?.nowMs);
    }
    return this.#now;
  }

  get cache(): Map<string, unknown> {
    this.#cache ??= new Map();
    return this.#cache;
  }

  get seed(): number | undefined {
    return this.#options?.seed;
  }

  print(text: string): void {
    (this.#options?.print ?? discard)(text);
  }

  /** A context for a `with` scope: fresh document cache, same clock and built-in cache. */
  fork(changes: { input?: Value; overrides?: readonly DataOverride[]; mocks?: ReadonlyMap<string, Mock> | undefined }): EvalCtx {
    this.touched ??= [];
    const child = new EvalCtx(
      'input' in changes ? changes.input : this.input,
      this.data,
      this.#options,
      'overrides' in changes ? changes.overrides : this.overrides,
      'mocks' in changes ? changes.mocks : this.mocks,
      this.bctx,
    );
    child.touched = this.touched;
    return child;
  }

  /** Clears the cache slots this evaluation (and its `with` scopes) filled. */
  release(): void {
    const t = this.touched;
    if (!t) return;
    for (const n of t) {
      n.epoch = 0;
      n.cached = undefined;
    }
    // Dropped rather than truncated: setting `length` is a runtime call, a fresh list is cheaper.
    this.touched = undefined;
  }
}

export function forkCtx(c: EvalCtx, changes: { input?: Value; overrides?: readonly DataOverride[]; mocks?: ReadonlyMap<string, Mock> | undefined }): EvalCtx {
  return c.fork(changes);
}

/** A compiled rule definition (one `p ... if body`, with its else chain). */
export interface RuleDef {
  kind: 'complete' | 'multi' | 'function';
  loc: Loc;
  /** Evaluates the body; calls onValue(key path values, value) per solution. Returns true to stop. */
  eval(c: EvalCtx, args: Value[] | undefined, onValue: (keys: Value[], value: Value) => boolean): boolean;
  /** Value is the same for every solution (stop after the first). */
  constValue: boolean;
  /** Number of key terms after the node path (ref heads with variables). */
  keyCount: number;
  /** Body of plain conditions, no variables, constant value: evaluated without closures. */
  quick?: { conds: readonly import('./conds.ts').Cond[]; value: Value; test?: (f: Frame) => boolean };
  /** Body of plain conditions and a computed value: the value, or undefined (one solution at most). */
  direct?: (c: EvalCtx) => Value | undefined;
  /** Index on `input.<path> == const`, if the body has one. */
  index?: { path: readonly string[]; key: string };
  /** `p := input.a.b` (no body, no else): the value read from the input. */
  inputValue?: (input: Value | undefined) => Value | undefined;
}

export interface RuleIndex {
  path: readonly string[];
  indexed: Map<string, RuleDef[]>;
  unindexed: RuleDef[];
}

export interface RuleNode {
  path: readonly string[];
  name: string;
  children: Map<string, RuleNode>;
  complete: RuleDef[];
  defaults: RuleDef[];
  multi: RuleDef[];
  /** Rules whose head ref continues past this node with variable keys. */
  objects: RuleDef[];
  functions: RuleDef[];
  /** Document cache slot: `cached` is valid for the evaluation whose epoch is `epoch`. */
  epoch: number;
  cached: Value | undefined;
  /** Rules whose index path is shared by all complete definitions. */
  indexPath?: readonly string[];
  indexed?: Map<string, RuleDef[]>;
  unindexed?: RuleDef[];
  /** Same index for multi-value (partial set) rules. */
  multiIndex?: RuleIndex;
  /** Some rule is defined at or below this node. */
  hasRules: boolean;
  /** The node's only rule is `p := input.a.b`: its document, read from the input (no cache needed). */
  inputValue?: (input: Value | undefined) => Value | undefined;
}

export function newNode(path: readonly string[]): RuleNode {
  return {
    path, name: path[path.length - 1] ?? 'data', children: new Map(), complete: [], defaults: [], multi: [],
    objects: [], functions: [], hasRules: false, epoch: 0, cached: undefined,
  };
}

export function conflict(message: string, loc: Loc): RegoEvalError {
  return new RegoEvalError('eval_conflict_error', message, loc);
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * `x.key` for a string key: the hot path of `input.a.b.c`. Plain objects are read as JS
 * properties; inherited ones (all functions, or `__proto__`) are not Rego values.
 */
export function getField(x: Value | undefined, key: string): Value | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  if (Array.isArray(x) || x instanceof RegoSet || x instanceof RegoObject) return indexValue(x, key);
  const v = (x as PlainObject)[key];
  if (v === undefined || typeof v === 'function') return undefined;
  if (key === '__proto__' && !hasOwn.call(x, key)) return undefined;
  return v;
}

type Accessor = (x: Value | undefined) => Value | undefined;
const accessors = new Map<string, Accessor>();

function slowPath(x: Value | undefined, path: readonly string[], from: number): Value | undefined {
  for (let i = from; i < path.length && x !== undefined; i++) x = getField(x, path[i]!);
  return x;
}

/**
 * `x.a.b.c` for a constant path, as generated JavaScript: each step is a property read with a
 * literal name, so V8 keeps an inline cache per step instead of one megamorphic keyed load.
 * Same semantics as getField (arrays, sets and non-string-keyed objects take the generic path).
 */
export function pathAccessor(path: readonly string[]): Accessor {
  const key = JSON.stringify(path);
  let fn = accessors.get(key);
  if (fn) return fn;
  if (path.some((p) => p === '__proto__')) {
    fn = (x) => slowPath(x, path, 0);
  } else {
    let body = 'let y;\n';
    path.forEach((p, i) => {
      body += `if (typeof x !== 'object' || x === null) return undefined;\n`;
      // Plain objects (JSON, protobuf-decoded input) take the fast path; arrays, sets,
      // RegoObjects and null-prototype objects the generic one.
      body += `if (x.constructor !== Object) return slow(x, ${i});\n`;
      body += `y = x[${JSON.stringify(p)}];\nif (y === undefined || typeof y === 'function') return undefined;\nx = y;\n`;
    });
    body += 'return x;';
    const make = new Function('slow', `return function access(x) {\n${body}\n};`) as (slow: (x: Value, i: number) => Value | undefined) => Accessor;
    fn = make((x, i) => slowPath(x, path, i));
  }
  accessors.set(key, fn);
  return fn;
}

/** `x[key]` on any value; undefined when not indexable or absent. */
export function indexValue(x: Value | undefined, key: Value): Value | undefined {
  if (x === undefined || x === null || typeof x !== 'object') return undefined;
  if (Array.isArray(x)) {
    if (typeof key !== 'number' || !Number.isInteger(key) || key < 0 || key >= x.length) return undefined;
    return x[key];
  }
  if (x instanceof RegoSet) return x.has(key) ? key : undefined;
  return objectGet(x as PlainObject | RegoObject, key);
}

/** Calls k(key, value) for each element of a collection (arrays by index, sets key = value). */
export function iterate(x: Value | undefined, k: (key: Value, value: Value) => boolean): boolean {
  if (x === undefined || x === null || typeof x !== 'object') return false;
  // `undefined` members (input built in JavaScript rather than parsed) are absent, not values.
  // Each element is a unit of the evaluation budget (budget.ts): loops and comprehensions end here.
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) {
      tick();
      const v = x[i];
      if (v !== undefined && k(i, v)) return true;
    }
    return false;
  }
  if (x instanceof RegoSet) {
    for (const v of x.values()) {
      tick();
      if (k(v, v)) return true;
    }
    return false;
  }
  if (x instanceof RegoObject) {
    for (const [key, v] of x.entries()) {
      tick();
      if (k(key, v)) return true;
    }
    return false;
  }
  // OPA's order: keys sorted by code point.
  const keys = Object.keys(x);
  charge(keys.length);
  for (const key of keys.sort(compareStrings)) {
    tick();
    const v = (x as PlainObject)[key];
    if (v !== undefined && k(key, v)) return true;
  }
  return false;
}

/** Base document at a string path. */
export function lookupPath(root: Value | undefined, path: readonly string[], from = 0, to = path.length): Value | undefined {
  let x = root;
  for (let i = from; i < to; i++) {
    if (x === undefined || x === null || typeof x !== 'object' || Array.isArray(x) || x instanceof RegoSet) {
      if (Array.isArray(x)) {
        const n = Number(path[i]);
        x = /^\d+$/.test(path[i]!) ? x[n] : undefined;
        continue;
      }
      return undefined;
    }
    x = objectGet(x as PlainObject | RegoObject, path[i]!);
  }
  return x;
}

/** A copy of root with path set to value (objects created on the way). */
export function patchPath(root: Value | undefined, path: readonly string[], value: Value, i = 0): Value {
  if (i === path.length) return value;
  const key = path[i]!;
  const base = root !== undefined && isObject(root) ? root : {};
  const entries = objectEntries(base).filter(([k]) => k !== key);
  entries.push([key, patchPath(objectGet(base, key), path, value, i + 1)]);
  return makeObject(entries);
}

interface DocSlot { key: Value; value?: Value; child?: DocBuilder; set?: RegoSet }

/** Builder of an object from (key path, value) pairs with OPA's conflict rules. */
export class DocBuilder {
  readonly #root = new Map<string, DocSlot>();

  /** The nested document under `key` (an object value already there becomes a builder; any other value conflicts). */
  #childAt(key: Value, k: string, slot: DocSlot | undefined, loc: Loc): DocBuilder {
    if (slot?.value !== undefined) {
      if (!isObject(slot.value)) throw conflict('object keys must be unique', loc);
      slot.child = DocBuilder.from(slot.value);
      delete slot.value;
    }
    if (!slot) {
      slot = { key, child: new DocBuilder() };
      this.#root.set(k, slot);
    }
    slot.child ??= new DocBuilder();
    return slot.child;
  }

  /** Sets keys[0..]... = value; a different existing value is a conflict. */
  put(keys: readonly Value[], value: Value, loc: Loc, i = 0): void {
    const key = keys[i]!;
    const k = keyOf(key);
    const slot = this.#root.get(k);
    if (i === keys.length - 1) {
      if (slot?.value !== undefined && !equals(slot.value, value)) throw conflict('object keys must be unique', loc);
      if (slot?.child) throw conflict('object keys must be unique', loc);
      if (!slot) this.#root.set(k, { key, value });
      else slot.value = value;
      return;
    }
    this.#childAt(key, k, slot, loc).put(keys, value, loc, i + 1);
  }

  /** Adds value to the set at keys (multi-value rules with ref heads). */
  add(keys: readonly Value[], value: Value, loc: Loc, i = 0): void {
    if (keys.length === 0) throw new Error('add with empty keys');
    const key = keys[i]!;
    const k = keyOf(key);
    let slot = this.#root.get(k);
    if (i === keys.length - 1) {
      if (!slot) {
        slot = { key, set: new RegoSet() };
        this.#root.set(k, slot);
      }
      if (!slot.set) {
        if (slot.value !== undefined && isSet(slot.value)) slot.set = new RegoSet(slot.value.unorderedValues());
        else throw conflict('object keys must be unique', loc);
        delete slot.value;
      }
      slot.set.add(value);
      return;
    }
    this.#childAt(key, k, slot, loc).add(keys, value, loc, i + 1);
  }

  static from(o: PlainObject | RegoObject): DocBuilder {
    const b = new DocBuilder();
    for (const [key, value] of objectEntries(o)) b.#root.set(keyOf(key), { key, value });
    return b;
  }

  get size(): number {
    return this.#root.size;
  }

  build(): PlainObject | RegoObject {
    const entries: [Value, Value][] = [];
    for (const slot of this.#root.values()) {
      entries.push([slot.key, slot.set ?? slot.child?.build() ?? slot.value!]);
    }
    return makeObject(entries);
  }
}

export function describeValue(v: Value): string {
  return formatValue(v);
}
