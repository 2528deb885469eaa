/**
 * Compiler: modules → rule tree of closures. Name resolution (locals, imports, package rules,
 * input/data, built-ins), safety ordering (analysis.ts), type and arity checks of built-in calls,
 * recursion checks, and code generation of bodies in continuation-passing style.
 */
import type { Expr, Module, Rule, Term, With } from './ast.ts';
import { forClosures, isConstant, isPatternTerm, refString } from './ast.ts';
import { type NameResolver, WILDCARD, evaluable, planExpr, planUnify, reorder } from './analysis.ts';
import { parseAnnotation } from './annotations.ts';
import { builtinCost, charge, checkWorstCase, isBudgetSignal, tick } from './budget.ts';
import { BUILTINS, type BuiltinDefinition, BuiltinError, BuiltinTypeError, mayAccept } from './builtins/index.ts';
import { type ArgSpec, type BuiltinInvoker, COMPARISON_OPS, type Cond, argValue, compareOp, compileConds } from './conds.ts';
import { ENGINE_BUILTINS } from './engine-builtins.ts';
import { RegoError, RegoEvalError, type RegoLocation } from './errors.ts';
import {
  type Alt,
  type Indexer,
  type Matcher,
  NO_KEYS,
  WALK,
  genCall,
  genCollection,
  indexSteps,
  matchArray,
  matchObject,
  matchParams,
  runAlts,
  walkValue,
} from './exec.ts';
import { buildRuleIndex, findIndex } from './indexing.ts';
import { callTerm } from './parser.ts';
import {
  EvalCtx,
  type Frame,
  type Gen,
  type K,
  type Mock,
  type RuleDef,
  type RuleNode,
  type Step,
  type Val,
  conflict,
  forkCtx,
  indexValue,
  iterate,
  lookupPath,
  newNode,
  patchPath,
  pathAccessor,
} from './runtime.ts';
import { Scope, explicitNames, exprVars, visitVars } from './scope.ts';
import { RuleTree } from './tree.ts';
import { formatTypeOf, literalType, typeText } from './typecheck.ts';
import {
  type PlainObject,
  RegoSet,
  type Value,
  equals,
  formatValue,
  isArray,
  isObject,
  keyOf,
  makeObject,
  NumberText,
  numberLiteral,
  objectSize,
} from './value.ts';

type CallTerm = Extract<Term, { type: 'call' }>;

export interface CompiledTerm {
  gen: Gen;
  val?: Val;
  /** How to read the value without a closure call (constants, input paths, slots). */
  spec?: ArgSpec;
  /** For boolean-valued calls: the same test as data. */
  cond?: Cond;
}

function fromVal(val: Val): CompiledTerm {
  return {
    val,
    gen: (f, k) => {
      const v = val(f);
      return v === undefined ? false : k(v);
    },
  };
}

const TRUE_STEP: Step = (_f, k) => k();
/** Continuation that stops at the first solution. */
const STOP: K = () => true;

/** A step that binds nothing: a conjunction of plain conditions (see conds.ts). */
type Test = (f: Frame) => boolean;
const CONDS = new WeakMap<Step, readonly Cond[]>();

function condStep(conds: readonly Cond[]): Step {
  // Generated on first use: intermediate lists made while folding a body are never compiled.
  let test: ((f: Frame) => boolean) | undefined;
  const step: Step = (f, k) => ((test ??= compileConds(conds))(f) ? k() : false);
  CONDS.set(step, conds);
  return step;
}

/**
 * `some x in <domain>` where the domain needs no search and x is a fresh variable: the sequence
 * that follows runs as a loop over arrays (no continuation closures per element).
 */
const SOME_IN = new WeakMap<Step, { domain: Val; slot: number }>();

/** `some x in domain` followed by rest, as one loop over arrays; other collections take `general`. */
function someInLoop(domain: Val, slot: number, rest: Step, general: Step): Step {
  const restConds = CONDS.get(rest);
  let test: Test | undefined;
  return (f, k) => {
    const d = domain(f);
    if (!Array.isArray(d)) return general(f, k);
    const s = f.s;
    // `undefined` members (input built in JavaScript) are absent, as in iterate().
    for (let i = 0; i < d.length; i++) {
      tick();
      const v = d[i];
      if (v === undefined) continue;
      s[slot] = v;
      if (restConds ? (test ??= compileConds(restConds))(f) && k() : rest(f, k)) {
        s[slot] = undefined;
        return true;
      }
    }
    s[slot] = undefined;
    return false;
  };
}

function testStep(test: Test): Step {
  return condStep([{ k: 2, test }]);
}

interface ModuleEnv {
  file: string;
  pkg: string[];
  imports: Map<string, string[]>;
  ruleNames: Set<string>;
}

export interface CompilerOptions {
  /** Extra built-ins (e.g. test-only ones) by full name. */
  builtins?: ReadonlyMap<string, BuiltinDefinition>;
}

/** Global name resolution result. */
type Resolved = { kind: 'local'; slot: number } | { kind: 'global'; path: string[] };

export class Program implements NameResolver {
  readonly tree = new RuleTree();
  readonly root: RuleNode = this.tree.root;
  readonly #errors: RegoError[] = [];
  readonly #builtins: ReadonlyMap<string, BuiltinDefinition>;
  readonly #outerCache = new WeakMap<object, Set<number>>();
  readonly #hidden = new WeakMap<object, Set<string>>();
  readonly #slotNames = new Map<Scope, Map<number, string>>();
  #env!: ModuleEnv;
  /** Rule nodes each rule node depends on (for recursion checks). */
  readonly #deps = new Map<RuleNode, Set<RuleNode>>();
  #current: RuleNode | undefined;
  /** Names of the current function's parameters (`:=` must not redeclare them). */
  #params = new Set<string>();

  constructor(options: CompilerOptions = {}) {
    // Engine-level built-ins fill in only what the built-in table does not define.
    const engine = ENGINE_BUILTINS.filter((d) => !BUILTINS.has(d.name)).map((d) => [d.name, d] as const);
    this.#builtins = engine.length || options.builtins ? new Map([...engine, ...BUILTINS, ...(options.builtins ?? [])]) : BUILTINS;
  }

  // ------------------------------------------------------------------ building

  compileModules(modules: Module[]): void {
    this.registerArities(modules);
    const pkgRules = new Map<string, Set<string>>();
    const placed: { mod: Module; rule: Rule; node: RuleNode; keys: Term[] }[] = [];
    for (const mod of modules) {
      const pkg = this.#packagePath(mod);
      this.#ensureNode(['data', ...pkg]);
      const key = pkg.join('.');
      if (!pkgRules.has(key)) pkgRules.set(key, new Set());
      const names = pkgRules.get(key)!;
      for (const rule of mod.rules) {
        const head = rule.ref[0]!;
        if (head.type === 'var') names.add(head.name);
        const { path, keys } = this.#splitRef(rule);
        const node = this.#ensureNode(['data', ...pkg, ...path]);
        if (!rule.args) this.#virtualNodes.add(node);
        if (!rule.args && keys.length) this.#objectNodes.add(node);
        placed.push({ mod, rule, node, keys });
      }
    }
    this.#collectAnnotations(modules, placed);
    const envs = new Map<Module, ModuleEnv>();
    for (const mod of modules) {
      const pkg = this.#packagePath(mod);
      envs.set(mod, { file: mod.file, pkg, imports: this.#imports(mod), ruleNames: pkgRules.get(pkg.join('.'))! });
    }
    for (const { mod, rule, node, keys } of placed) {
      this.#env = envs.get(mod)!;
      this.#current = node;
      this.#currentRule = rule;
      try {
        this.#placeRule(rule, node, keys);
      } catch (err) {
        if (err instanceof RegoError) this.#errors.push(...err.errors);
        else throw err;
      }
    }
    this.#current = undefined;
    this.#checkConflicts();
    this.#checkRecursion();
    for (const n of this.#allNodes(this.root)) {
      this.#buildIndex(n);
      // `method := input.a.b` alone at its node: its document is that input value, read directly.
      const only = n.complete.length === 1 ? n.complete[0]! : undefined;
      if (only?.inputValue && !n.defaults.length && !n.multi.length && !n.objects.length && !n.functions.length && !n.children.size && !this.#fnNodes.has(n)) {
        n.inputValue = only.inputValue;
      }
    }
  }

  get errors(): readonly RegoError[] {
    return this.#errors;
  }

  /** Compiles a query body in an empty module context. */
  compileQuery(body: Expr[], file: string): { step: Step; scope: Scope; order: Expr[] } {
    this.#env = { file, pkg: [], imports: new Map(), ruleNames: new Set() };
    const scope = new Scope();
    this.#predeclare(body, scope);
    const order = reorder(this, body, scope, new Set(), (s) => this.#nameOf(scope, s));
    const bound = new Set<number>();
    const step = this.#sequence(order.map((e) => this.#expr(e, scope, bound, true)));
    return { step, scope, order };
  }

  /** Compiles one term for query results (values of term expressions). */
  compileTermIn(t: Term, scope: Scope, bound: Set<number>): CompiledTerm {
    return this.#term(t, scope, bound);
  }

  #packagePath(mod: Module): string[] {
    return mod.package.map((t, i) => {
      if (i === 0 && t.type === 'var') return t.name;
      if (t.type === 'string') return t.value;
      throw new RegoError('rego_parse_error', 'package path must be strings', t.loc);
    });
  }

  #imports(mod: Module): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const imp of mod.imports) {
      const parts: string[] = [];
      const t = imp.path;
      const head = t.type === 'ref' ? t.head : t;
      if (head.type !== 'var') continue;
      parts.push(head.name);
      if (t.type === 'ref') for (const p of t.path) if (p.type === 'string') parts.push(p.value);
      if (parts[0] === 'rego' || parts[0] === 'future') continue;
      if (parts[0] !== 'data' && parts[0] !== 'input') {
        this.#errors.push(new RegoError('rego_parse_error', `invalid import ${parts.join('.')}: path must begin with input or data`, imp.loc));
        continue;
      }
      const alias = imp.alias ?? parts[parts.length - 1]!;
      if (out.has(alias)) this.#errors.push(new RegoError('rego_compile_error', `import must not shadow import ${alias}`, imp.loc));
      out.set(alias, parts);
    }
    return out;
  }

  /** Ground part of a rule's head ref (node path) and the variable key terms after it. */
  #splitRef(rule: Rule): { path: string[]; keys: Term[] } {
    const path: string[] = [];
    const keys: Term[] = [];
    rule.ref.forEach((t, i) => {
      if (keys.length === 0 && i === 0 && t.type === 'var') path.push(t.name);
      else if (keys.length === 0 && t.type === 'string') path.push(t.value);
      else keys.push(t);
    });
    // `p.q.r contains x` keeps the whole ground ref as the node; a `p[x] if` object rule needs a key.
    return { path, keys };
  }

  #ensureNode(path: string[]): RuleNode {
    let node = this.root;
    node.hasRules = true;
    for (let i = 1; i < path.length; i++) {
      let child = node.children.get(path[i]!);
      if (!child) {
        child = newNode(path.slice(1, i + 1));
        node.children.set(path[i]!, child);
      }
      node = child;
      node.hasRules = true;
    }
    return node;
  }

  nodeAt(path: readonly string[]): RuleNode | undefined {
    return this.tree.nodeAt(path);
  }

  docAt(node: RuleNode, c: EvalCtx): Value | undefined {
    return this.tree.docAt(node, c);
  }

  evalTop(node: RuleNode, c: EvalCtx): Value | undefined {
    return this.tree.evalTop(node, c);
  }

  /** Paths (without `data`) of every rule document, e.g. `['envoy','authz','allow']`. */
  rulePaths(): string[][] {
    return [...this.#allNodes(this.root)].filter((n) => this.#virtualNodes.has(n)).map((n) => [...n.path]);
  }

  *#allNodes(n: RuleNode): Generator<RuleNode> {
    yield n;
    for (const c of n.children.values()) yield* this.#allNodes(c);
  }

  #placeRule(rule: Rule, node: RuleNode, keys: Term[]): void {
    if (rule.args) {
      if (keys.length) throw new RegoError('rego_parse_error', 'function names must be ground refs', rule.loc);
      const def = this.#compileRuleDef(rule, 'function', []);
      (rule.default ? node.defaults : node.functions).push(def);
      return;
    }
    if (rule.key !== undefined) {
      const def = this.#compileRuleDef(rule, 'multi', keys);
      (keys.length ? node.objects : node.multi).push(def);
      return;
    }
    const def = this.#compileRuleDef(rule, 'complete', keys);
    if (rule.default) {
      if (keys.length) throw new RegoError('rego_compile_error', 'default rules must have a ground head ref', rule.loc);
      if (node.defaults.length) throw new RegoError('rego_type_error', `multiple default rules ${refString({ type: 'ref', head: { type: 'var', name: 'data', loc: rule.loc }, path: node.path.map((value) => ({ type: 'string', value, loc: rule.loc })), loc: rule.loc })} found`, rule.loc);
      node.defaults.push(def);
    } else (keys.length ? node.objects : node.complete).push(def);
  }

  // ------------------------------------------------------------------ rules

  #compileRuleDef(rule: Rule, kind: RuleDef['kind'], keys: Term[]): RuleDef {
    const scope = new Scope();
    const params: Matcher[] = [];
    const paramBound = new Set<number>();
    this.#params = new Set();
    // Parameters that are not patterns (`f($"{x}")`, `f(input.y)`) become a fresh variable and an
    // equality checked with the body, as OPA rewrites them.
    const argChecks: Expr[] = [];
    const args = rule.args?.map((a, i) => {
      if (isPatternTerm(a)) return a;
      const v: Term = { type: 'var', name: `__arg${i}__`, loc: a.loc };
      argChecks.push({ kind: 'term', term: callTerm('eq', [v, a], a.loc), negated: false, with: [], loc: a.loc });
      return v;
    });
    if (args) {
      for (const a of args) {
        visitVars(a, (v) => {
          if (v.name === '_') return;
          this.#params.add(v.name);
          this.#declareNamed(scope, v.name);
        });
      }
      for (const a of args) params.push(this.#pattern(a, scope, paramBound));
    }
    const alts: Alt[] = [];
    let constValue = true;
    let index: RuleDef['index'];
    let inputValue: RuleDef['inputValue'];
    for (let alt: Rule | undefined = rule; alt; alt = alt.else) {
      const bound = new Set(paramBound);
      const body = argChecks.length ? [...alt.body, ...argChecks] : alt.body;
      this.#predeclare(body, scope);
      const order = reorder(this, body, scope, bound, (s) => this.#nameOf(scope, s));
      const steps = order.map((e) => this.#expr(e, scope, bound, false));
      const headTerms = [...keys, ...(kind === 'multi' ? [alt.key!] : [])];
      const valueTerm: Term = kind === 'multi' ? alt.key! : (alt.value ?? { type: 'boolean', value: true, loc: alt.loc });
      for (const t of [...headTerms, valueTerm]) this.#checkHeadSafe(t, scope, bound);
      const keyVals = keys.map((t) => this.#requireVal(this.#term(t, scope, bound)));
      const value = this.#term(valueTerm, scope, bound);
      if (!isConstant(valueTerm) || keys.length) constValue = false;
      if (alt === rule && !rule.else && kind === 'complete' && !params.length && !keys.length && value.spec?.k === 1 && isTrueBody(alt.body)) {
        inputValue = value.spec.get;
      }
      alts.push({ body: this.#sequence(steps), keys: keyVals, value: value.val ?? value.gen, isVal: value.val !== undefined });
      if (alt === rule && !rule.else) index = findIndex(order);
    }
    const size = () => scope.size;
    const only = alts.length === 1 && !params.length && !keys.length && alts[0]!.isVal ? alts[0]! : undefined;
    const onlyConds = only ? CONDS.get(only.body) : undefined;
    let onlyTest: ((f: Frame) => boolean) | undefined;
    const evalDef = (c: EvalCtx, args: Value[] | undefined, onValue: (keys: Value[], value: Value) => boolean): boolean => {
      const f: Frame = { s: new Array(size()), c };
      if (onlyConds) {
        // One body of plain conditions: no continuations needed.
        if (!(onlyTest ??= compileConds(onlyConds))(f)) return false;
        const v = (only!.value as Val)(f);
        return v === undefined ? false : onValue(NO_KEYS, v);
      }
      if (!args) return runAlts(alts, f, onValue);
      if (args.length !== params.length) return false;
      return matchParams(params, args, 0, f, alts, onValue);
    };
    const def: RuleDef = { kind, loc: rule.loc, eval: evalDef, constValue, keyCount: keys.length };
    if (onlyConds && constValue && scope.size === 0) {
      // No variables, constant value: the rule tree evaluates the conditions directly.
      const v = (only!.value as Val)({ s: [], c: new EvalCtx(undefined, {}, undefined) });
      if (v !== undefined) def.quick = { conds: onlyConds, value: v };
    }
    if (onlyConds && !def.quick) {
      // One body of plain conditions and a computed value (`method := input.a.b`): the rule tree
      // reads the value directly, without a continuation closure per evaluation.
      def.direct = (c) => {
        const f: Frame = { s: new Array(scope.size), c };
        if (!(onlyTest ??= compileConds(onlyConds))(f)) return undefined;
        return (only!.value as Val)(f);
      };
    }
    if (only && constValue && !onlyConds) {
      // One body that binds variables and a constant value (`allow if { some x in ...; ... }`):
      // the first solution decides; no value callback per evaluation.
      const v = (only.value as Val)({ s: [], c: new EvalCtx(undefined, {}, undefined) });
      const body = only.body;
      if (v !== undefined) def.direct = (c) => (body({ s: new Array(scope.size), c }, STOP) ? v : undefined);
    }
    if (index) def.index = index;
    if (inputValue) def.inputValue = inputValue;
    return def;
  }

  #checkHeadSafe(t: Term, scope: Scope, bound: Set<number>): void {
    if (!evaluable(this, t, scope, bound)) {
      const names: string[] = [];
      visitVars(t, (v) => {
        const s = v.name === '_' ? WILDCARD : this.slotOf(v.name, scope);
        if (s !== undefined && !bound.has(s) && !names.includes(v.name)) names.push(v.name);
      });
      throw new RegoError('rego_unsafe_var_error', `var ${names[0] ?? '_'} is unsafe`, t.loc);
    }
  }

  #requireVal(c: CompiledTerm): Val {
    if (c.val) return c.val;
    const gen = c.gen;
    return (f) => {
      let out: Value | undefined;
      gen(f, (v) => {
        out = v;
        return true;
      });
      return out;
    };
  }

  // ------------------------------------------------------------------ scopes and names

  #isGlobal(name: string): boolean {
    return name === 'input' || name === 'data' || this.#env.imports.has(name) || this.#env.ruleNames.has(name);
  }

  #declareNamed(scope: Scope, name: string): void {
    const slot = scope.declare(name);
    let m = this.#slotNames.get(scope);
    if (!m) this.#slotNames.set(scope, (m = new Map()));
    m.set(slot, name);
  }

  #nameOf(scope: Scope, slot: number): string {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const n = this.#slotNames.get(s)?.get(slot);
      if (n) return n;
    }
    return '_';
  }

  /** Undefined functions are reported before safety (as OPA's compiler orders its stages). */
  #checkCalls(body: Expr[], scope: Scope): void {
    const visit = (t: Term): void => {
      if (t.type === 'call') {
        const head = t.op.type === 'ref' ? t.op.head : t.op;
        const isOp = head.type === 'var' && (head.name === 'eq' || head.name === 'assign') && t.op.type === 'var';
        if (!isOp) this.#callTargetForCompile(t, scope);
        t.args.forEach(visit);
      } else if (t.type === 'ref') {
        visit(t.head);
        t.path.forEach(visit);
      } else if (t.type === 'array' || t.type === 'set') t.items.forEach(visit);
      else if (t.type === 'object') {
        for (const [k, v] of t.entries) {
          visit(k);
          visit(v);
        }
      }
    };
    for (const e of body) {
      if (e.kind === 'term') visit(e.term);
      else if (e.kind === 'somein' || e.kind === 'every') visit(e.domain);
    }
  }

  /** Declares the body's local variables in scope (explicit declarations shadow outer names). */
  #predeclare(body: Expr[], scope: Scope): void {
    this.#checkCalls(body, scope);
    const explicit = (t: Term) => visitVars(t, (v) => v.name !== '_' && this.#declareNamed(scope, v.name));
    const assigned = new Set<string>();
    for (const e of body) {
      if (e.kind === 'some') e.vars.forEach(explicit);
      if (e.kind === 'somein') {
        if (e.key) explicit(e.key);
        explicit(e.value);
      }
      if (e.kind === 'term' && e.term.type === 'call' && e.term.op.type === 'var' && e.term.op.name === 'assign') {
        const lhs = e.term.args[0]!;
        if (lhs.type !== 'var' && lhs.type !== 'array' && lhs.type !== 'object') {
          throw new RegoError('rego_compile_error', `cannot assign to ${lhs.type}`, e.loc);
        }
        visitVars(lhs, (v) => {
          if (v.name === '_') return;
          if (assigned.has(v.name) || (scope.own(v.name) !== undefined && this.#params.has(v.name))) {
            throw new RegoError('rego_compile_error', `var ${v.name} assigned above`, v.loc);
          }
          if (v.name === 'input' || v.name === 'data') throw new RegoError('rego_compile_error', `variables must not shadow ${v.name} (use a different variable name)`, v.loc);
          assigned.add(v.name);
        });
        explicit(lhs);
      }
    }
    // A name declared with := or some later in the body is not yet visible to closures before it.
    const declaredAt = body.map((e) => explicitNames(e));
    body.forEach((e, j) => {
      const before = new Set(declaredAt.slice(0, j).flatMap((x) => [...x]));
      const hidden = new Set(declaredAt.slice(j).flatMap((x) => [...x]).filter((n) => !before.has(n)));
      if (hidden.size === 0) return;
      if (e.kind === 'term') forClosures(e.term, (c) => this.#hidden.set(c, hidden));
      if (e.kind === 'every') this.#hidden.set(e, hidden);
    });
    const implicit = (v: Extract<Term, { type: 'var' }>) => {
      if (v.name === '_' || scope.lookup(v.name) !== undefined || this.#isGlobal(v.name)) return;
      this.#declareNamed(scope, v.name);
    };
    for (const e of body) {
      exprVars(e, implicit, false);
      // `with f as count`: a function name is not a variable.
      for (const w of e.with) if (!this.#namesFunction(w.value, scope)) visitVars(w.value, implicit);
    }
  }

  #namesFunction(t: Term, scope: Scope): boolean {
    const path = this.#targetPath(t, scope);
    return path !== undefined && this.#mockName(path) !== undefined;
  }

  slotOf(name: string, scope: Scope): number | undefined {
    if (name === '_') return WILDCARD;
    return scope.lookup(name);
  }

  #resolve(name: string, scope: Scope): Resolved | undefined {
    const slot = scope.lookup(name);
    if (slot !== undefined) return { kind: 'local', slot };
    const imp = this.#env.imports.get(name);
    if (imp) return { kind: 'global', path: imp };
    if (name === 'input' || name === 'data') return { kind: 'global', path: [name] };
    if (this.#env.ruleNames.has(name)) return { kind: 'global', path: ['data', ...this.#env.pkg, name] };
    return undefined;
  }

  closureOuter(t: Term, scope: Scope, shadow?: ReadonlySet<string>): Set<number> {
    const cached = this.#outerCache.get(t);
    if (cached) return cached;
    const out = new Set<number>();
    const locals = new Set<string>([...(shadow ?? []), ...(this.#hidden.get(t) ?? [])]);
    const bodies: Expr[] = [];
    const heads: Term[] = [];
    if (t.type === 'arraycomp' || t.type === 'setcomp') {
      bodies.push(...t.body);
      heads.push(t.term);
    } else if (t.type === 'objectcomp') {
      bodies.push(...t.body);
      heads.push(t.key, t.value);
    } else if (t.type === 'template') {
      for (const p of t.parts) if (typeof p !== 'string') bodies.push(p);
    }
    for (const e of bodies) {
      if (e.kind === 'some') e.vars.forEach((v) => v.type === 'var' && locals.add(v.name));
      if (e.kind === 'somein') {
        if (e.key) visitVars(e.key, (v) => locals.add(v.name));
        visitVars(e.value, (v) => locals.add(v.name));
      }
      if (e.kind === 'term' && e.term.type === 'call' && e.term.op.type === 'var' && e.term.op.name === 'assign') {
        visitVars(e.term.args[0]!, (v) => locals.add(v.name));
      }
    }
    const addVar = (name: string) => {
      if (name === '_' || locals.has(name)) return;
      const slot = scope.lookup(name);
      if (slot !== undefined) out.add(slot);
    };
    const visitTerm = (x: Term) => {
      visitVars(x, (v) => addVar(v.name));
      forClosures(x, (c) => {
        for (const s of this.closureOuter(c, scope, locals)) out.add(s);
      });
    };
    for (const h of heads) visitTerm(h);
    for (const e of bodies) {
      exprVars(e, (v) => addVar(v.name));
      if (e.kind === 'term') visitTerm(e.term);
      if (e.kind === 'every') for (const s of this.everyOuter(e, scope)) out.add(s);
    }
    this.#outerCache.set(t, out);
    return out;
  }

  everyOuter(e: Extract<Expr, { kind: 'every' }>, scope: Scope): Set<number> {
    const cached = this.#outerCache.get(e);
    if (cached) return cached;
    const locals = new Set<string>(this.#hidden.get(e) ?? []);
    if (e.key) visitVars(e.key, (v) => locals.add(v.name));
    visitVars(e.value, (v) => locals.add(v.name));
    const fake: Term = { type: 'arraycomp', term: { type: 'null', loc: e.loc }, body: e.body, loc: e.loc };
    const hidden = this.#hidden.get(e);
    if (hidden) this.#hidden.set(fake, hidden);
    const inner = this.closureOuter(fake, scope);
    const out = new Set<number>();
    for (const s of inner) if (!locals.has(this.#nameOf(scope, s))) out.add(s);
    this.#outerCache.set(e, out);
    return out;
  }

  callArity(t: CallTerm, scope: Scope): number | undefined {
    const target = this.#callTarget(t, scope, false);
    if (!target) return undefined;
    if (target.kind === 'builtin') return target.def.decl.variadic ? undefined : target.def.decl.args.length;
    return target.kind === 'function' ? target.arity : undefined;
  }

  // ------------------------------------------------------------------ bodies

  #sequence(steps: Step[]): Step {
    if (steps.length === 0) return TRUE_STEP;
    // Fold runs of plain conditions into one test.
    const folded: Step[] = [];
    for (const st of steps) {
      const t = CONDS.get(st);
      const prev = folded.length ? CONDS.get(folded[folded.length - 1]!) : undefined;
      if (t && prev) folded[folded.length - 1] = condStep([...prev, ...t]);
      else folded.push(st);
    }
    steps = folded;
    if (steps.length === 1) return steps[0]!;
    let next = steps[steps.length - 1]!;
    for (let i = steps.length - 2; i >= 0; i--) {
      const s = steps[i]!;
      const n = next;
      const conds = CONDS.get(s);
      const someIn = SOME_IN.get(s);
      if (conds) {
        // A test binds nothing: run the rest directly, without a continuation closure.
        let test: Test | undefined;
        next = (f, k) => ((test ??= compileConds(conds))(f) ? n(f, k) : false);
      } else if (someIn) {
        next = someInLoop(someIn.domain, someIn.slot, n, (f, k) => s(f, () => n(f, k)));
      } else next = (f, k) => s(f, () => n(f, k));
    }
    return next;
  }

  /** Compiles a nested body (comprehension, every, negation) in scope; bound is not changed. */
  #closureBody(body: Expr[], scope: Scope, bound: Set<number>): { step: Step; bound: Set<number> } {
    this.#predeclare(body, scope);
    const inner = new Set(bound);
    const order = reorder(this, body, scope, inner, (s) => this.#nameOf(scope, s));
    const steps = order.map((e) => this.#expr(e, scope, inner, false));
    return { step: this.#sequence(steps), bound: inner };
  }

  #expr(e: Expr, scope: Scope, bound: Set<number>, query: boolean): Step {
    if (e.negated) {
      const inner = this.#exprInner({ ...e, negated: false } as Expr, scope, new Set(bound), query);
      const innerConds = e.with.length ? undefined : CONDS.get(inner);
      if (innerConds) return condStep([{ k: 3, conds: innerConds }]);
      const withInner = this.#withs(e.with, inner, scope, bound);
      const stopFirst = () => true;
      return testStep((f) => !withInner(f, stopFirst));
    }
    const step = this.#exprInner(e, scope, bound, query);
    return e.with.length ? this.#withs(e.with, step, scope, bound) : step;
  }

  #exprInner(e: Expr, scope: Scope, bound: Set<number>, query: boolean): Step {
    switch (e.kind) {
      case 'some':
        return TRUE_STEP;
      case 'somein':
        return this.#someIn(e, scope, bound);
      case 'every':
        return this.#every(e, scope, bound);
      case 'term':
        return this.#termExpr(e.term, scope, bound, query);
    }
  }

  #someIn(e: Extract<Expr, { kind: 'somein' }>, scope: Scope, bound: Set<number>): Step {
    const domain = this.#term(e.domain, scope, bound);
    const key = e.key ? this.#pattern(e.key, scope, bound) : undefined;
    const r = !key && e.value.type === 'var' && e.value.name !== '_' ? this.#resolve(e.value.name, scope) : undefined;
    const freshSlot = r?.kind === 'local' && !bound.has(r.slot) ? r.slot : undefined;
    const value = this.#pattern(e.value, scope, bound);
    const step: Step = (f, k) =>
      domain.gen(f, (d) => {
        if (d === null || typeof d !== 'object') return false;
        const isSet = d instanceof RegoSet;
        return iterate(d, (kk, vv) => {
          if (key && !isSet) return key(f, kk, () => value(f, vv, k));
          if (key && isSet) return key(f, vv, () => value(f, vv, k));
          return value(f, vv, k);
        });
      });
    if (freshSlot !== undefined && domain.val) SOME_IN.set(step, { domain: domain.val, slot: freshSlot });
    return step;
  }

  #every(e: Extract<Expr, { kind: 'every' }>, scope: Scope, bound: Set<number>): Step {
    const domain = this.#term(e.domain, scope, bound);
    const inner = new Scope(scope);
    if (e.key) visitVars(e.key, (v) => v.name !== '_' && this.#declareNamed(inner, v.name));
    visitVars(e.value, (v) => v.name !== '_' && this.#declareNamed(inner, v.name));
    const innerBound = new Set(bound);
    const key = e.key ? this.#pattern(e.key, inner, innerBound) : undefined;
    const value = this.#pattern(e.value, inner, innerBound);
    const body = this.#closureBody(e.body, inner, innerBound).step;
    const stopFirst = () => true;
    return (f, k) => {
      let ok = true;
      let defined = false;
      domain.gen(f, (d) => {
        defined = true;
        if (d === null || typeof d !== 'object' || d instanceof NumberText) {
          ok = false;
          return true;
        }
        const isSet = d instanceof RegoSet;
        iterate(d, (kk, vv) => {
          const found = key
            ? key(f, isSet ? vv : kk, () => value(f, vv, () => body(f, stopFirst)))
            : value(f, vv, () => body(f, stopFirst));
          if (!found) ok = false;
          return !ok;
        });
        return !ok;
      });
      return ok && defined ? k() : false;
    };
  }

  #termExpr(t: Term, scope: Scope, bound: Set<number>, query: boolean): Step {
    if (t.type === 'call' && t.op.type === 'var' && (t.op.name === 'eq' || t.op.name === 'assign')) {
      return this.#unify(t.args[0]!, t.args[1]!, scope, bound, t.op.name === 'assign');
    }
    if (t.type === 'call') {
      const arity = this.callArity(t, scope);
      if (arity !== undefined && t.args.length === arity + 1) {
        const call = this.#call({ ...t, args: t.args.slice(0, arity) }, scope, bound);
        const out = this.#pattern(t.args[arity]!, scope, bound);
        return (f, k) => call.gen(f, (v) => out(f, v, k));
      }
    }
    const c = this.#term(t, scope, bound);
    if (query && t.type !== 'call') return (f, k) => c.gen(f, () => k());
    if (c.cond) return condStep([c.cond]);
    if (c.val) {
      const val = c.val;
      return testStep((f) => {
        const v = val(f);
        return v !== undefined && v !== false;
      });
    }
    return (f, k) => c.gen(f, (v) => (v === false ? false : k()));
  }

  #unify(a: Term, b: Term, scope: Scope, bound: Set<number>, assign: boolean): Step {
    if (assign) {
      const rhs = this.#term(b, scope, bound);
      const lhs = this.#pattern(a, scope, bound);
      return (f, k) => rhs.gen(f, (v) => lhs(f, v, k));
    }
    const ea = evaluable(this, a, scope, bound);
    const eb = evaluable(this, b, scope, bound);
    if (ea && eb) {
      const ca = this.#term(a, scope, bound);
      const cb = this.#term(b, scope, bound);
      if (ca.spec && cb.spec) return condStep([{ k: 0, op: 0, a: ca.spec, b: cb.spec, name: '=', mocked: () => undefined }]);
      if (ca.val && cb.val) {
        const va = ca.val;
        const vb = cb.val;
        return testStep((f) => {
          const x = va(f);
          if (x === undefined) return false;
          const y = vb(f);
          return y !== undefined && equals(x, y);
        });
      }
      return (f, k) => ca.gen(f, (x) => cb.gen(f, (y) => (equals(x, y) ? k() : false)));
    }
    if (eb && planUnify(this, a, b, scope, bound)) {
      const cb = this.#term(b, scope, bound);
      const pa = this.#pattern(a, scope, bound);
      return (f, k) => cb.gen(f, (v) => pa(f, v, k));
    }
    if (ea) {
      const ca = this.#term(a, scope, bound);
      const pb = this.#pattern(b, scope, bound);
      return (f, k) => ca.gen(f, (v) => pb(f, v, k));
    }
    if (a.type === 'array' && b.type === 'array' && a.items.length === b.items.length) {
      const steps: Step[] = [];
      const pending = a.items.map((x, i) => [x, b.items[i]!] as const);
      while (pending.length) {
        const idx = pending.findIndex(([x, y]) => planUnify(this, x, y, scope, bound) !== undefined);
        if (idx < 0) throw this.#unsafeIn([a, b], scope, bound, a.loc);
        const [x, y] = pending.splice(idx, 1)[0]!;
        steps.push(this.#unify(x, y, scope, bound, false));
      }
      return this.#sequence(steps);
    }
    if (a.type === 'object' && b.type === 'object' && a.entries.length === b.entries.length) {
      // Pair the values by key (keys are ground: constants or bound variables, checked by planUnify).
      const constKey = (t: Term) => (isConstant(t) ? keyOf(this.#requireVal(this.#term(t, scope, bound))({ s: [], c: new EvalCtx(undefined, {}, undefined) })!) : undefined);
      const keysB = b.entries.map(([k]) => constKey(k));
      const pairs: [Term, Term][] = [];
      const used = new Set<number>();
      for (const [ka, va] of a.entries) {
        const kk = constKey(ka);
        const j = kk === undefined ? -1 : keysB.findIndex((x, i) => !used.has(i) && x === kk);
        if (j < 0) break;
        used.add(j);
        pairs.push([va, b.entries[j]![1]]);
      }
      if (pairs.length === a.entries.length) {
        return this.#unify({ type: 'array', items: pairs.map((p) => p[0]), loc: a.loc }, { type: 'array', items: pairs.map((p) => p[1]), loc: b.loc }, scope, bound, false);
      }
      if (a.entries.every(([k]) => isConstant(k)) && b.entries.every(([k]) => isConstant(k))) return () => false; // different key sets
    }
    throw this.#unsafeIn([a, b], scope, bound, a.loc);
  }

  /** rego_unsafe_var_error naming the first unbound variable of the terms. */
  #unsafeIn(terms: Term[], scope: Scope, bound: Set<number>, loc: RegoLocation): RegoError {
    let name = '_';
    for (const t of terms) {
      visitVars(t, (v) => {
        const slot = v.name === '_' ? undefined : this.slotOf(v.name, scope);
        if (name === '_' && slot !== undefined && !bound.has(slot)) name = v.name;
      });
    }
    return new RegoError('rego_unsafe_var_error', `var ${name} is unsafe`, loc);
  }

  #withs(withs: With[], inner: Step, scope: Scope, bound: Set<number>): Step {
    if (withs.length === 0) return inner;
    const mods = withs.map((w) => this.#with(w, scope, bound));
    return (f, k) => {
      const saved = f.c;
      let c = saved;
      for (const m of mods) {
        const next = m(f, c);
        if (next === undefined) return false;
        c = next;
      }
      const nc = c;
      f.c = nc;
      try {
        return inner(f, () => {
          f.c = saved;
          try {
            return k();
          } finally {
            f.c = nc;
          }
        });
      } finally {
        f.c = saved;
      }
    };
  }

  #with(w: With, scope: Scope, bound: Set<number>): (f: Frame, c: EvalCtx) => EvalCtx | undefined {
    const path = this.#targetPath(w.target, scope);
    if (!path) throw new RegoError('rego_compile_error', `with keyword target must reference existing input, data, or a function`, w.loc);
    if (path[0] === 'input') {
      const rest = path.slice(1);
      const value = this.#requireVal(this.#term(w.value, scope, bound));
      return (f, c) => {
        const v = value(f);
        if (v === undefined) return undefined;
        return forkCtx(c, { input: patchPath(c.input, rest, v) });
      };
    }
    const mockName = this.#mockName(path);
    if (mockName) {
      const fnTarget = this.#functionValue(w.value, scope);
      if (fnTarget) {
        return (_f, c) => {
          const mocks = new Map(c.mocks ?? []);
          mocks.set(mockName, { kind: 'function', call: fnTarget });
          return forkCtx(c, { mocks });
        };
      }
      const value = this.#requireVal(this.#term(w.value, scope, bound));
      return (f, c) => {
        const v = value(f);
        if (v === undefined) return undefined;
        const mocks = new Map<string, Mock>(c.mocks ?? []);
        mocks.set(mockName, { kind: 'value', value: v });
        return forkCtx(c, { mocks });
      };
    }
    if (path[0] !== 'data') throw new RegoError('rego_compile_error', `with keyword target must reference existing input, data, or a function`, w.loc);
    const rest = path.slice(1);
    const value = this.#requireVal(this.#term(w.value, scope, bound));
    return (f, c) => {
      const v = value(f);
      if (v === undefined) return undefined;
      return forkCtx(c, { overrides: [...(c.overrides ?? []), { path: rest, value: v }] });
    };
  }

  /** Full path of a `with` target: ['input', ...], ['data', ...] or a built-in name ['count']. */
  #targetPath(t: Term, scope: Scope): string[] | undefined {
    const head = t.type === 'ref' ? t.head : t;
    if (head.type !== 'var') return undefined;
    const rest: string[] = [];
    if (t.type === 'ref') {
      for (const p of t.path) {
        if (p.type !== 'string') return undefined;
        rest.push(p.value);
      }
    }
    const r = this.#resolve(head.name, scope);
    if (r?.kind === 'global') return [...r.path, ...rest];
    if (r?.kind === 'local') return undefined;
    return [head.name, ...rest];
  }

  /** Mock key when path names a function (user function node or built-in), else undefined. */
  #mockName(path: string[]): string | undefined {
    if (path[0] === 'data') {
      const node = this.nodeAt(path.slice(1));
      if (node && this.#fnNodes.has(node)) return path.join('.');
      return undefined;
    }
    const name = path.join('.');
    if (this.#builtins.has(name) || name === 'print') return name;
    return undefined;
  }

  /** A `with` value naming a function: returns its call. */
  #functionValue(t: Term, scope: Scope): ((c: EvalCtx, args: Value[], loc: RegoLocation) => Value | undefined) | undefined {
    const path = this.#targetPath(t, scope);
    if (!path) return undefined;
    if (path[0] === 'data') {
      const node = this.nodeAt(path.slice(1));
      if (!node || !this.#fnNodes.has(node)) return undefined;
      return (c, args, loc) => this.tree.callFunction(node, args, c, loc);
    }
    const def = this.#builtins.get(path.join('.'));
    if (!def) return undefined;
    const name = path.join('.');
    return (c, args, loc) => this.#invokeBuiltin(def, name, args, c, loc);
  }

  // ------------------------------------------------------------------ terms

  #term(t: Term, scope: Scope, bound: Set<number>): CompiledTerm {
    switch (t.type) {
      case 'null':
        return constTerm(null);
      case 'boolean':
        return constTerm(t.value);
      case 'number':
        return constTerm(numberLiteral(t.text));
      case 'string':
        return constTerm(t.value);
      case 'var':
      case 'ref':
        return this.#ref(t, scope, bound);
      case 'call':
        return this.#call(t, scope, bound);
      case 'array':
        return this.#collection(t.items, scope, bound, (vs) => vs.slice());
      case 'set':
        return this.#collection(t.items, scope, bound, (vs) => new RegoSet(vs));
      case 'object':
        return this.#object(t, scope, bound);
      case 'arraycomp':
      case 'setcomp':
      case 'objectcomp':
        return this.#comprehension(t, scope, bound);
      case 'template':
        return this.#templateString(t, scope, bound);
    }
  }

  #collection(items: Term[], scope: Scope, bound: Set<number>, make: (vs: Value[]) => Value): CompiledTerm {
    const cs = items.map((x) => this.#term(x, scope, bound));
    if (cs.every((c) => c.val)) {
      const vals = cs.map((c) => c.val!);
      if (vals.length === 0) return fromVal(() => make([]));
      return fromVal((f) => {
        const out: Value[] = new Array(vals.length);
        for (let i = 0; i < vals.length; i++) {
          const v = vals[i]!(f);
          if (v === undefined) return undefined;
          out[i] = v;
        }
        return make(out);
      });
    }
    const gens = cs.map((c) => c.gen);
    return {
      gen: (f, k) => genCollection(gens, new Array(gens.length), 0, f, k, make),
    };
  }

  #object(t: Extract<Term, { type: 'object' }>, scope: Scope, bound: Set<number>): CompiledTerm {
    const flat: Term[] = [];
    for (const [k, v] of t.entries) flat.push(k, v);
    return this.#collection(flat, scope, bound, (vs) => {
      const entries: [Value, Value][] = [];
      for (let i = 0; i < vs.length; i += 2) entries.push([vs[i]!, vs[i + 1]!]);
      return makeObject(entries);
    });
  }

  #comprehension(t: Extract<Term, { type: 'arraycomp' | 'setcomp' | 'objectcomp' }>, scope: Scope, bound: Set<number>): CompiledTerm {
    const inner = new Scope(scope);
    const { step, bound: innerBound } = this.#closureBody(t.body, inner, bound);
    if (t.type === 'objectcomp') {
      const key = this.#requireVal(this.#term(t.key, inner, innerBound));
      const value = this.#requireVal(this.#term(t.value, inner, innerBound));
      const loc = t.loc;
      return fromVal((f) => {
        const b = new Map<string, [Value, Value]>();
        step(f, () => {
          const kv = key(f);
          const vv = value(f);
          if (kv === undefined || vv === undefined) return false;
          const kk = keyOf(kv);
          const prev = b.get(kk);
          if (prev && !equals(prev[1], vv)) throw conflict('object keys must be unique', loc);
          b.set(kk, [kv, vv]);
          return false;
        });
        return makeObject(b.values());
      });
    }
    const head = this.#requireVal(this.#term(t.term, inner, innerBound));
    if (t.type === 'setcomp') {
      return fromVal((f) => {
        const out = new RegoSet();
        step(f, () => {
          const v = head(f);
          if (v !== undefined) out.add(v);
          return false;
        });
        return out;
      });
    }
    return fromVal((f) => {
      const out: Value[] = [];
      step(f, () => {
        const v = head(f);
        if (v !== undefined) out.push(v);
        return false;
      });
      return out;
    });
  }

  #templateString(t: Extract<Term, { type: 'template' }>, scope: Scope, bound: Set<number>): CompiledTerm {
    const parts = t.parts.map((p) => {
      if (typeof p === 'string') return p;
      const inner = new Scope(scope);
      if (p.kind !== 'term') throw new RegoError('rego_parse_error', 'template expressions must be terms', p.loc);
      this.#predeclare([p], inner);
      const innerBound = new Set(bound);
      const c = this.#term(p.term, inner, innerBound);
      const out = inner.fresh();
      const capture: Step = (f, k) =>
        c.gen(f, (v) => {
          f.s[out] = v;
          return k();
        });
      const step = this.#withs(p.with, capture, inner, innerBound);
      return { step, out };
    });
    return fromVal((f) => {
      let s = '';
      for (const p of parts) {
        if (typeof p === 'string') {
          s += p;
          continue;
        }
        let v: Value | undefined;
        p.step(f, () => {
          v = f.s[p.out];
          return true;
        });
        f.s[p.out] = undefined;
        s += v === undefined ? '<undefined>' : typeof v === 'string' ? v : formatValue(v);
      }
      return s;
    });
  }

  /** Matching a pattern against a value, binding its unbound variables. */
  #pattern(t: Term, scope: Scope, bound: Set<number>): Matcher {
    switch (t.type) {
      case 'var': {
        if (t.name === '_') return (_f, _v, k) => k();
        const r = this.#resolve(t.name, scope);
        if (r?.kind === 'local') {
          const slot = r.slot;
          if (bound.has(slot)) return (f, v, k) => (equals(f.s[slot]!, v) ? k() : false);
          bound.add(slot);
          return (f, v, k) => {
            f.s[slot] = v;
            const res = k();
            f.s[slot] = undefined;
            return res;
          };
        }
        break;
      }
      case 'array': {
        const ms = t.items.map((x) => this.#pattern(x, scope, bound));
        const n = ms.length;
        return (f, v, k) => (Array.isArray(v) && v.length === n ? matchArray(ms, v, 0, f, k) : false);
      }
      case 'object': {
        const keys = t.entries.map(([key]) => this.#requireVal(this.#term(key, scope, bound)));
        const ms = t.entries.map(([, val]) => this.#pattern(val, scope, bound));
        const n = ms.length;
        return (f, v, k) => (isObject(v) && objectSize(v) === n ? matchObject(keys, ms, v, 0, f, k) : false);
      }
      default:
        break;
    }
    const c = this.#term(t, scope, bound);
    if (c.val) {
      const val = c.val;
      return (f, v, k) => {
        const x = val(f);
        return x !== undefined && equals(x, v) ? k() : false;
      };
    }
    return (f, v, k) => c.gen(f, (x) => (equals(x, v) ? k() : false));
  }

  // ------------------------------------------------------------------ refs

  #ref(t: Extract<Term, { type: 'var' | 'ref' }>, scope: Scope, bound: Set<number>): CompiledTerm {
    const head = t.type === 'ref' ? t.head : t;
    const path = t.type === 'ref' ? t.path : [];
    if (head.type === 'var') {
      const r = this.#resolve(head.name, scope);
      if (head.name === '_' || r === undefined) {
        throw new RegoError('rego_unsafe_var_error', `var ${head.name} is unsafe`, head.loc);
      }
      if (r.kind === 'local') {
        const slot = r.slot;
        if (!bound.has(slot)) throw new RegoError('rego_unsafe_var_error', `var ${head.name} is unsafe`, head.loc);
        if (path.length === 0) return { ...fromVal((f) => f.s[slot]), spec: { k: 2, slot } };
        return this.#index(fromVal((f) => f.s[slot]), path, scope, bound);
      }
      const full: Term[] = [...r.path.slice(1).map((value) => ({ type: 'string' as const, value, loc: head.loc })), ...path];
      if (r.path[0] === 'input') {
        const c = this.#index(fromVal((f) => f.c.input), full, scope, bound);
        if (full.every((p) => p.type === 'string')) {
          const names = full.map((p) => (p as { value: string }).value);
          c.spec = { k: 1, path: names, get: pathAccessor(names) };
        }
        return c;
      }
      return this.#dataRef(full, scope, bound, t.loc);
    }
    return this.#index(this.#term(head, scope, bound), path, scope, bound);
  }

  /** `data.<path>`: virtual documents from the rule tree, base documents from data. */
  #dataRef(path: Term[], scope: Scope, bound: Set<number>, loc: RegoLocation): CompiledTerm {
    // Base documents have string keys: `data.x[2]` reads key "2", as OPA does.
    const consts: string[] = [];
    for (const p of path) {
      if (p.type === 'string') consts.push(p.value);
      else if (p.type === 'number' && /^\d+$/.test(p.text)) consts.push(p.text);
      else break;
    }
    let node: RuleNode | undefined = this.root;
    let depth = 0;
    while (depth < consts.length && !this.#objectNodes.has(node)) {
      const child: RuleNode | undefined = node.children.get(consts[depth]!);
      if (!child) break;
      node = child;
      depth++;
    }
    const target = node;
    if (this.#fnNodes.has(target) && depth === consts.length) throw new RegoError('rego_type_error', `function ${['data', ...consts.slice(0, depth)].join('.')} called without arguments`, loc);
    const virtual = this.#virtualNodes.has(target);
    // Past the rule tree (or into an intermediate node's base document): plain data lookup.
    const baseOnly = depth < consts.length && !virtual;
    // A variable key after the node (`data[x].p`) is dynamic: only checked at run time.
    if (!baseOnly) this.#addDep(target, path.length === depth);
    const prefix = baseOnly ? consts : consts.slice(0, depth);
    const rest = path.slice(prefix.length);
    const fast: Val = baseOnly
      ? (f) => lookupPath(f.c.data, prefix)
      : target === this.root && depth === 0
        ? (f) => this.tree.docAt(this.root, f.c)
        : (f) => this.tree.docAt(target, f.c);
    const base: Val = (f) => (f.c.overrides ? this.tree.resolveOverridden(f.c, prefix, target, baseOnly) : fast(f));
    if (!baseOnly && !this.#virtualNodes.has(target) && target.children.size && rest.length) {
      // `data[x].allow` with x bound: walk the tree at run time instead of computing all of data.
      const keys: Val[] = [];
      for (const p of rest) {
        if (!(evaluable(this, p, scope, bound)?.size === 0)) break;
        const c = this.#term(p, scope, bound);
        if (!c.val) break;
        keys.push(c.val);
      }
      if (keys.length) {
        const dynamic: Val = (f) => {
          const vals: Value[] = [];
          for (const k of keys) {
            const v = k(f);
            if (v === undefined) return undefined;
            vals.push(v);
          }
          return this.tree.resolveDynamic(f.c, prefix, target, vals);
        };
        return this.#index(fromVal(dynamic), rest.slice(keys.length), scope, bound);
      }
    }
    return this.#index(fromVal(base), rest, scope, bound);
  }



  #index(base: CompiledTerm, path: Term[], scope: Scope, bound: Set<number>): CompiledTerm {
    if (path.length === 0) return base;

    const steps: Indexer[] = path.map((p) => {
      if (p.type === 'string') {
        const key = p.value;
        return { key: () => key, field: key };
      }
      if (p.type === 'var') {
        if (p.name === '_') return { step: (_f, x, k) => iterate(x, (_kk, v) => k(v)) };
        const r = this.#resolve(p.name, scope);
        if (r?.kind === 'local' && !bound.has(r.slot)) {
          const slot = r.slot;
          bound.add(slot);
          return {
            step: (f, x, k) =>
              iterate(x, (kk, v) => {
                f.s[slot] = kk;
                const res = k(v);
                f.s[slot] = undefined;
                return res;
              }),
          };
        }
      }
      if (evaluable(this, p, scope, bound)?.size === 0) {
        const c = this.#term(p, scope, bound);
        if (c.val) return { key: c.val };
        return {
          step: (f, x, k) =>
            c.gen(f, (key) => {
              const v = indexValue(x, key);
              return v === undefined ? false : k(v);
            }),
        };
      }
      const m = this.#pattern(p, scope, bound);
      return { step: (f, x, k) => iterate(x, (kk, v) => m(f, kk, () => k(v))) };
    });
    if (base.val && steps.every((s) => s.field !== undefined)) {
      // `input.a.b.c`: constant string keys only.
      const b = base.val;
      const access = pathAccessor(steps.map((s) => s.field!));
      return fromVal((f) => access(b(f)));
    }
    if (base.val && steps.every((s) => s.key)) {
      // `input.a.b[0]`: the leading constant string keys as one generated accessor, then the rest.
      let lead = 0;
      while (steps[lead]!.field !== undefined) lead++;
      const b0 = base.val;
      const access = lead ? pathAccessor(steps.slice(0, lead).map((s) => s.field!)) : undefined;
      const b: Val = access ? (f) => access(b0(f)) : b0;
      const keys = steps.slice(lead).map((s) => s.key!);
      if (keys.length === 1) {
        const k0 = keys[0]!;
        return fromVal((f) => {
          const x = b(f);
          if (x === undefined) return undefined;
          const key = k0(f);
          return key === undefined ? undefined : indexValue(x, key);
        });
      }
      return fromVal((f) => {
        let x = b(f);
        for (let i = 0; i < keys.length && x !== undefined; i++) {
          const key = keys[i]!(f);
          if (key === undefined) return undefined;
          x = indexValue(x, key);
        }
        return x;
      });
    }
    return { gen: (f, k) => base.gen(f, (x) => indexSteps(steps, 0, x, f, k)) };
  }

  // ------------------------------------------------------------------ calls

  #callTarget(
    t: CallTerm,
    scope: Scope,
    report: boolean,
  ):
    | { kind: 'builtin'; def: BuiltinDefinition; name: string }
    | { kind: 'function'; node: RuleNode; name: string; arity: number }
    | { kind: 'print' }
    | { kind: 'metadata'; which: string }
    | undefined {
    const parts: string[] = [];
    const head = t.op.type === 'ref' ? t.op.head : t.op;
    if (head.type !== 'var') return undefined;
    if (t.op.type === 'ref') for (const p of t.op.path) if (p.type === 'string') parts.push(p.value);
    const r = scope.lookup(head.name) === undefined ? this.#resolve(head.name, scope) : undefined;
    if (r?.kind === 'global' && r.path[0] === 'data') {
      const full = [...r.path, ...parts];
      const node = this.nodeAt(full.slice(1));
      if (node && this.#fnNodes.has(node)) {
        return { kind: 'function', node, name: full.join('.'), arity: this.#functionArity(node) };
      }
    }
    const name = [head.name, ...parts].join('.');
    if (name === 'print') return { kind: 'print' };
    if (name === 'rego.metadata.rule' || name === 'rego.metadata.chain') return { kind: 'metadata', which: name };
    if (name === 'walk') return { kind: 'builtin', def: WALK, name };
    const def = this.#builtins.get(name);
    if (def) return { kind: 'builtin', def, name };
    if (report) throw new RegoError('rego_type_error', `undefined function ${r?.kind === 'global' ? [...r.path, ...parts].join('.') : name}`, t.loc);
    return undefined;
  }

  #functionArity(node: RuleNode): number {
    const n = this.#arities.get(node);
    return n ?? 0;
  }
  readonly #arities = new Map<RuleNode, number>();

  #currentRule: Rule | undefined;
  readonly #ruleAnnotations = new Map<Rule, PlainObject>();
  readonly #documentAnnotations = new Map<RuleNode, PlainObject[]>();
  readonly #packageAnnotations = new Map<string, { path: string[]; annotations: PlainObject }[]>();

  #collectAnnotations(modules: Module[], placed: { rule: Rule; node: RuleNode }[]): void {
    for (const mod of modules) {
      if (!mod.annotations) continue;
      try {
        const a = parseAnnotation(mod.annotations, 'package');
        const pkg = this.#packagePath(mod);
        const list = this.#packageAnnotations.get(pkg.join('.')) ?? [];
        list.push({ path: pkg, annotations: a });
        this.#packageAnnotations.set(pkg.join('.'), list);
      } catch (err) {
        if (err instanceof RegoError) this.#errors.push(err);
        else throw err;
      }
    }
    for (const { rule, node } of placed) {
      if (!rule.annotations) continue;
      try {
        const a = parseAnnotation(rule.annotations, 'rule');
        if (a.scope === 'document') {
          const list = this.#documentAnnotations.get(node) ?? [];
          list.push(a);
          this.#documentAnnotations.set(node, list);
        } else this.#ruleAnnotations.set(rule, a);
      } catch (err) {
        if (err instanceof RegoError) this.#errors.push(err);
        else throw err;
      }
    }
  }

  /** `rego.metadata.chain()` for the rule being compiled: rule, document, package, enclosing packages. */
  #metadataChain(): Value {
    const rule = this.#currentRule;
    const node = this.#current;
    if (!rule || !node) return [];
    const path = [...node.path];
    const chain: Value[] = [];
    const own = this.#ruleAnnotations.get(rule);
    chain.push(own ? { path, annotations: own } : { path });
    for (const a of this.#documentAnnotations.get(node) ?? []) chain.push({ path, annotations: a });
    const pkg = this.#env.pkg;
    for (let n = pkg.length; n > 0; n--) {
      for (const p of this.#packageAnnotations.get(pkg.slice(0, n).join('.')) ?? []) {
        if (n === pkg.length || p.annotations.scope === 'subpackages') chain.push({ path: p.path, annotations: p.annotations });
      }
    }
    return chain;
  }

  /** Records function arities before bodies compile (calls may precede definitions). */
  registerArities(modules: Module[]): void {
    for (const mod of modules) {
      const pkg = this.#packagePath(mod);
      for (const rule of mod.rules) {
        if (!rule.args) continue;
        const { path } = this.#splitRef(rule);
        const node = this.#ensureNode(['data', ...pkg, ...path]);
        const prev = this.#arities.get(node);
        if (prev !== undefined && prev !== rule.args.length) {
          this.#errors.push(new RegoError('rego_type_error', `conflicting rules data.${[...pkg, ...path].join('.')} found`, rule.loc));
        }
        this.#arities.set(node, rule.args.length);
        this.#fnNodes.add(node);
      }
    }
  }
  readonly #fnNodes = this.tree.fnNodes;
  /** Nodes with rules of their own (not functions), known before bodies compile. */
  readonly #virtualNodes = this.tree.virtualNodes;
  /** Nodes with var-key ref-head rules: their documents cover descendants too. */
  readonly #objectNodes = this.tree.objectNodes;

  /** A node whose value is a document defined by its own rules (not a function, not a package). */
  isDocument(node: RuleNode): boolean {
    return this.#virtualNodes.has(node) && !this.#fnNodes.has(node);
  }

  isFunctionNode(node: RuleNode): boolean {
    return this.#fnNodes.has(node);
  }

  #call(t: CallTerm, scope: Scope, bound: Set<number>): CompiledTerm {
    const target = this.#callTargetForCompile(t, scope);
    // Arguments that bind variables by iteration (`x == xs[x]`) are compiled and run first.
    const order = t.args.map((_, i) => i);
    const gensFirst = order.filter((i) => (evaluable(this, t.args[i]!, scope, bound)?.size ?? 0) > 0);
    const argOrder = [...gensFirst, ...order.filter((i) => !gensFirst.includes(i))];
    const compiled: CompiledTerm[] = new Array(t.args.length);
    for (const i of argOrder) compiled[i] = this.#term(t.args[i]!, scope, bound);
    const args = compiled;
    const loc = t.loc;
    if (target.kind === 'metadata') {
      // Annotations are known at compile time: the call is a constant of the rule it appears in.
      if (args.length) throw new RegoError('rego_type_error', `${target.which}: arity mismatch`, loc);
      if (target.which === 'rego.metadata.chain') return constTerm(this.#metadataChain());
      const own = this.#currentRule ? this.#ruleAnnotations.get(this.#currentRule) : undefined;
      return constTerm(own ?? {});
    }
    if (target.kind === 'print') {
      const vals = args.map((a) => this.#requireVal(a));
      return fromVal((f) => {
        const parts = vals.map((v) => {
          const x = v(f);
          return x === undefined ? '<undefined>' : typeof x === 'string' ? x : formatValue(x);
        });
        f.c.bctx.print(parts.join(' '));
        return true;
      });
    }
    if (target.kind === 'builtin' && target.def === WALK) {
      // walk is a relation (one result per node), so it is a generator, not a function.
      if (args.length !== 1) throw new RegoError('rego_type_error', 'walk: arity mismatch', loc);
      const arg = args[0]!;
      return { gen: (f, k) => arg.gen(f, (x) => walkValue(x, [], k)) };
    }
    let invoke: (f: Frame, vals: Value[]) => Value | undefined;
    if (target.kind === 'builtin') {
      this.#typeCheck(target.def, target.name, t, args.length);
      const def = target.def;
      const name = target.name;
      invoke = (f, vals) => {
        if (f.c.mocks) {
          const m = f.c.mocks.get(name);
          if (m) return m.kind === 'value' ? m.value : m.call(forkCtx(f.c, { mocks: undefined }), vals, loc);
        }
        return this.#invokeBuiltin(def, name, vals, f.c, loc);
      };
    } else {
      if (target.arity !== args.length) {
        throw new RegoError('rego_type_error', `${target.name}: arity mismatch\n\thave: ${args.length} argument(s)\n\twant: ${target.arity} argument(s)`, loc);
      }
      const node = target.node;
      const name = target.name;
      this.#addDep(node);
      invoke = (f, vals) => {
        if (f.c.mocks) {
          const m = f.c.mocks.get(name);
          if (m) return m.kind === 'value' ? m.value : m.call(forkCtx(f.c, { mocks: undefined }), vals, loc);
        }
        return this.tree.callFunction(node, vals, f.c, loc);
      };
    }
    if (target.kind === 'builtin' && args.length === 2 && args[0]!.val && args[1]!.val && COMPARISON_OPS[target.name] !== undefined) {
      // Comparisons cannot fail on types: evaluated inline (as data, see conds.ts) unless mocked.
      const a = args[0]!.val!;
      const b = args[1]!.val!;
      const mocked = (f: Frame) => invoke(f, [a(f)!, b(f)!]);
      const cond: Cond = { k: 0, op: COMPARISON_OPS[target.name]!, a: specOf(args[0]!)!, b: specOf(args[1]!)!, name: target.name, mocked };
      return {
        ...fromVal((f) => {
          if (f.c.mocks) return mocked(f);
          const x = argValue(cond.a, f);
          if (x === undefined) return undefined;
          const y = argValue(cond.b, f);
          return y === undefined ? undefined : compareOp(cond.op, x, y);
        }),
        cond,
      };
    }
    if (target.kind === 'builtin' && args.every((a) => a.val)) {
      // Built-in calls as data too: `startswith(input.path, "/api/")` needs no closure per argument.
      const specs = args.map((a) => specOf(a)!);
      const def = target.def;
      const name = target.name;
      const n = specs.length;
      const cond: Cond = { k: 1, def, name, args: specs, loc, invoke: this.#builtinInvoker };
      return {
        ...fromVal((f) => {
          const xs: Value[] = new Array(n);
          for (let i = 0; i < n; i++) {
            const v = argValue(specs[i]!, f);
            if (v === undefined) return undefined;
            xs[i] = v;
          }
          return invoke(f, xs);
        }),
        cond,
      };
    }
    if (args.every((a) => a.val)) {
      const vals = args.map((a) => a.val!);
      const n = vals.length;
      return fromVal((f) => {
        const xs: Value[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const v = vals[i]!(f);
          if (v === undefined) return undefined;
          xs[i] = v;
        }
        return invoke(f, xs);
      });
    }
    const gens = args.map((a) => a.gen);
    return {
      gen: (f, k) => genCall(gens, argOrder, new Array(gens.length), 0, f, k, invoke),
    };
  }

  #callTargetForCompile(t: CallTerm, scope: Scope) {
    const target = this.#callTarget(t, scope, true);
    if (!target) throw new RegoError('rego_type_error', `undefined function ${refString(t.op)}`, t.loc);
    return target;
  }

  /** Calls a built-in from a condition: honours `with` mocks, then invokes. */
  readonly #builtinInvoker: BuiltinInvoker = (def, name, args, f, loc) => {
    const m = f.c.mocks?.get(name);
    if (m) return m.kind === 'value' ? m.value : m.call(forkCtx(f.c, { mocks: undefined }), args, loc);
    return this.#invokeBuiltin(def, name, args, f.c, loc);
  };

  #invokeBuiltin(def: BuiltinDefinition, name: string, args: Value[], c: EvalCtx, loc: RegoLocation): Value | undefined {
    // Charged before it runs: a built-in over a huge input is refused by the budget, not cut after.
    charge(builtinCost(args));
    checkWorstCase(name, args);
    try {
      return def.fn(args, c.bctx);
    } catch (err) {
      if (err instanceof RegoError || isBudgetSignal(err)) throw err;
      if (!c.strict) return undefined;
      const code = err instanceof BuiltinTypeError ? 'eval_type_error' : 'eval_builtin_error';
      const msg = err instanceof Error ? err.message : String(err);
      const text = msg.startsWith(`${name}:`) ? msg : `${name}: ${msg}`;
      if (!(err instanceof BuiltinError) && !(err instanceof BuiltinTypeError) && !(err instanceof Error)) throw err;
      throw new RegoEvalError(code, text, loc);
    }
  }

  #typeCheck(def: BuiltinDefinition, name: string, t: CallTerm, n: number): void {
    const want = def.decl.args.length;
    if (def.decl.variadic ? n < want : n !== want) {
      const have = t.args.map((a) => formatTypeOf(literalType(a))).join(', ');
      const wantText = def.decl.args.map((a) => typeText(a)).join(', ');
      throw new RegoError('rego_type_error', `${name}: arity mismatch\n\thave: (${have})\n\twant: (${wantText})`, t.loc);
    }
    for (let i = 0; i < n; i++) {
      const expected = def.decl.args[i] ?? def.decl.variadic!;
      const actual = literalType(t.args[i]!);
      if (actual && !mayAccept(expected, actual)) {
        const have = t.args.map((a) => formatTypeOf(literalType(a))).join(', ');
        const wantText = def.decl.args.map((a) => typeText(a)).join(', ');
        throw new RegoError('rego_type_error', `${name}: invalid argument(s)\n\thave: (${have})\n\twant: (${wantText})`, t.loc);
      }
    }
  }









  // ------------------------------------------------------------------ recursion and indexing

  #addDep(target: RuleNode, deep = true): void {
    if (!this.#current) return;
    let s = this.#deps.get(this.#current);
    if (!s) this.#deps.set(this.#current, (s = new Set()));
    s.add(target);
    if (!deep) this.#shallow.add(target);
  }
  /** Targets of dynamic refs: a dependency on the node's own rules only. */
  readonly #shallow = new Set<RuleNode>();

  /** Rules of different kinds for the same document, as OPA's type checker rejects them. */
  #checkConflicts(): void {
    for (const n of this.#allNodes(this.root)) {
      const single = n.complete.length + n.defaults.length > 0;
      const name = ['data', ...n.path].join('.');
      const loc = n.complete[0]?.loc ?? n.multi[0]?.loc ?? n.functions[0]?.loc ?? n.defaults[0]?.loc ?? n.objects[0]?.loc;
      if (!loc) continue;
      const fn = this.#fnNodes.has(n);
      const singleValue = n.complete.length > 0 || (n.defaults.length > 0 && !fn);
      const kinds = [singleValue, n.multi.length > 0, fn, n.objects.length > 0].filter(Boolean).length;
      if (kinds > 1 && !(n.objects.length && n.multi.length === 0 && !single && !fn)) {
        this.#errors.push(new RegoError('rego_type_error', `conflicting rules ${name} found`, loc));
        continue;
      }
      if ((single || fn) && n.children.size) {
        const below = [...n.children.values()].map((c) => ['data', ...c.path].join('.'));
        this.#errors.push(new RegoError('rego_type_error', `rule ${name} conflicts with [${below.join(' ')}]`, loc));
      }
    }
  }

  #checkRecursion(): void {
    // A dependency on a node means a dependency on every rule below it.
    const below = (n: RuleNode): RuleNode[] => [...this.#allNodes(n)];
    const edges = new Map<RuleNode, Set<RuleNode>>();
    for (const [from, tos] of this.#deps) {
      const all = new Set<RuleNode>();
      for (const t of tos) for (const b of this.#shallow.has(t) ? [t] : below(t)) all.add(b);
      edges.set(from, all);
    }
    const state = new Map<RuleNode, number>();
    const stack: RuleNode[] = [];
    const reported = new Set<RuleNode>();
    const visit = (n: RuleNode): void => {
      state.set(n, 1);
      stack.push(n);
      for (const m of edges.get(n) ?? []) {
        const st = state.get(m);
        if (st === 1) {
          if (!reported.has(m)) {
            reported.add(m);
            const cycle = stack.slice(stack.indexOf(m)).concat(m).map((x) => ['data', ...x.path].join('.'));
            const def = m.complete[0] ?? m.functions[0] ?? m.multi[0] ?? m.objects[0] ?? m.defaults[0];
            this.#errors.push(
              new RegoError('rego_recursion_error', `rule ${cycle[0]} is recursive: ${cycle.join(' -> ')}`, def?.loc ?? { file: '', line: 0, col: 0 }),
            );
          }
        } else if (st === undefined) visit(m);
      }
      stack.pop();
      state.set(n, 2);
    };
    for (const n of edges.keys()) if (!state.has(n)) visit(n);
  }

  #buildIndex(node: RuleNode): void {
    const complete = buildRuleIndex(node.complete);
    if (complete) {
      node.indexPath = complete.path;
      node.indexed = complete.indexed;
      node.unindexed = complete.unindexed;
    }
    const multi = buildRuleIndex(node.multi);
    if (multi) node.multiIndex = multi;
  }
}

// Runtime helpers are module-level functions, not closures created per call: cheaper to create
// (none at all) and, under tsx's keepNames transform, free of a defineProperty per closure.

/** A body that is just `true` (the body of `p := value` without `if`). */
function isTrueBody(body: readonly Expr[]): boolean {
  return body.every((e) => e.kind === 'term' && !e.negated && !e.with.length && e.term.type === 'boolean' && e.term.value === true);
}

function constTerm(v: Value): CompiledTerm {
  return { ...fromVal(() => v), spec: { k: 0, v } };
}

function specOf(c: CompiledTerm): ArgSpec | undefined {
  return c.spec ?? (c.val ? { k: 3, fn: c.val } : undefined);
}

export { isArray, planExpr };
