/**
 * Library API: compile modules once, evaluate queries or entrypoints many times.
 *
 *   const policy = compileRego({ 'authz.rego': source });
 *   policy.evaluate('envoy/authz/allow', input)   // entrypoint → [{ expressions: [value], bindings: {} }]
 *   policy.evaluate('data.envoy.authz.allow = x', input) // query → one row per solution
 *   policy.entrypoint('envoy/authz/allow')(input) // hot path: the value or undefined
 */
import type { Expr } from './ast.ts';
import type { BuiltinDefinition } from './builtins/index.ts';
import { Program } from './compiler.ts';
import { RegoError, compileErrors } from './errors.ts';
import { parseModule, parseQuery } from './parser.ts';
import { strictErrors } from './strict.ts';
import { EvalCtx, type Frame, type Step } from './runtime.ts';
import type { Scope } from './scope.ts';
import { type Value, fromJSON } from './value.ts';

export interface CompileRegoOptions {
  /** Extra built-ins by full name (tests, embedding applications). */
  builtins?: ReadonlyMap<string, BuiltinDefinition>;
  /** OPA's strict mode: unused assignments, arguments and imports, deprecated built-ins are errors. */
  strict?: boolean;
  /** Base data document (`data`) used when an evaluation passes none. */
  data?: unknown;
}

export interface EvaluateOptions {
  /** Strict built-in errors: a failing built-in is an error instead of undefined. */
  strictBuiltinErrors?: boolean;
  /** Output of `print`; default discards. */
  print?: (text: string) => void;
  /** Evaluation time (ns since epoch); default: `nowMs`, else the current time. */
  now?: bigint;
  /** Evaluation time in ms since the epoch (a service clock's reading), used when `now` is not given. */
  nowMs?: number;
  /** Seed for random built-ins. */
  seed?: number;
}

export interface RegoResult {
  /** Value of each query expression (`true` for calls that succeeded). */
  expressions: Value[];
  /** Values of the query's named variables. */
  bindings: Record<string, Value>;
}

export interface PreparedQuery {
  readonly vars: readonly string[];
  evaluate(input?: Value, data?: Value, options?: EvaluateOptions): RegoResult[];
}

export class CompiledPolicy {
  readonly #program: Program;
  readonly #data: Value;
  readonly #queries = new Map<string, PreparedQuery>();
  /** Packages of the compiled modules (e.g. `envoy.authz`). */
  readonly packages: readonly string[];

  constructor(program: Program, packages: string[], data: Value) {
    this.#program = program;
    this.packages = packages;
    this.#data = data;
  }

  /** Every rule document as a data path (`data.envoy.authz.allow`), sorted. */
  rules(): string[] {
    return this.#program
      .rulePaths()
      .map((p) => ['data', ...p].join('.'))
      .sort();
  }

  /** Prepares a query (`data.x.allow = v`) or entrypoint (`x/allow`); cached per text. */
  prepare(queryOrEntrypoint: string): PreparedQuery {
    let q = this.#queries.get(queryOrEntrypoint);
    if (!q) {
      q = this.#prepare(toQuery(queryOrEntrypoint));
      // Bounded: callers passing ever-new query texts must not grow memory without limit.
      if (this.#queries.size >= 1024) this.#queries.clear();
      this.#queries.set(queryOrEntrypoint, q);
    }
    return q;
  }

  evaluate(queryOrEntrypoint: string, input?: Value, data?: Value, options?: EvaluateOptions): RegoResult[] {
    return this.prepare(queryOrEntrypoint).evaluate(input, data, options);
  }

  /**
   * Hot path for one document: returns its value, or undefined. Per-call options (e.g. `now` from
   * the service's clock, a `print` sink) replace the ones given here.
   */
  entrypoint(path: string, options?: EvaluateOptions): (input?: Value, data?: Value, callOptions?: EvaluateOptions) => Value | undefined {
    const query = toQuery(path);
    const parts = /^data(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(query) ? query.split('.').slice(1) : undefined;
    const node = parts ? this.#program.nodeAt(parts) : undefined;
    if (node && this.#program.isDocument(node)) {
      // A rule document: evaluate it directly, without query machinery.
      const program = this.#program;
      const baseData = this.#data;
      return (input, data, callOptions) => {
        const c = new EvalCtx(input, data ?? baseData, callOptions ?? options);
        try {
          return program.evalTop(node, c);
        } finally {
          c.release();
        }
      };
    }
    const q = this.prepare(query);
    return (input, data, callOptions) => {
      const rows = q.evaluate(input, data, callOptions ?? options);
      return rows.length ? rows[0]!.expressions[0] : undefined;
    };
  }

  #prepare(query: string): PreparedQuery {
    const body = parseQuery(query, 'query');
    const { step, scope } = this.#program.compileQuery(body, 'query');
    if (this.#program.errors.length) throw compileErrors([...this.#program.errors]);
    return this.#makeQuery(body, step, scope);
  }

  #makeQuery(body: Expr[], step: Step, scope: Scope): PreparedQuery {
    const program = this.#program;
    const named = scope.names().filter(([n]) => !n.startsWith('$'));
    const vars = named.map(([n]) => n);
    // Values of term expressions: each is evaluated again per solution with the bindings in place.
    const exprValues = body.map((e) => {
      if (e.kind !== 'term' || e.negated || (e.term.type === 'call' && e.term.op.type === 'var' && ['eq', 'assign'].includes(e.term.op.name))) return undefined;
      if (e.term.type === 'call') return undefined;
      const bound = new Set(named.map(([, s]) => s));
      try {
        return program.compileTermIn(e.term, scope, bound).val;
      } catch {
        return undefined;
      }
    });
    const baseData = this.#data;
    return {
      vars,
      evaluate(input, data, options) {
        const c = newCtx(input, data ?? baseData, options);
        const f: Frame = { s: new Array(scope.size), c };
        const out: RegoResult[] = [];
        try {
          step(f, () => {
            const bindings: Record<string, Value> = {};
            for (const [n, s] of named) {
              const v = f.s[s];
              if (v !== undefined) bindings[n] = v;
            }
            const expressions = exprValues.map((ev) => (ev ? (ev(f) ?? true) : true));
            out.push({ expressions, bindings });
            return false;
          });
        } finally {
          c.release();
        }
        return out;
      },
    };
  }
}

export function newCtx(input: Value | undefined, data: Value, options: EvaluateOptions | undefined): EvalCtx {
  return new EvalCtx(input, data, options);
}

/** `a/b/c` → `data.a.b.c`; a query is returned unchanged. */
export function toQuery(queryOrEntrypoint: string): string {
  const s = queryOrEntrypoint.trim();
  if (/^[A-Za-z_][A-Za-z0-9_]*(\/[A-Za-z_][A-Za-z0-9_]*)+$/.test(s) || /^\/?[A-Za-z_][A-Za-z0-9_/]*$/.test(s) && s.includes('/')) {
    return 'data.' + s.replace(/^\//, '').split('/').join('.');
  }
  return s;
}

/**
 * Parses and compiles Rego modules (keyed by file name). Throws a RegoError (code
 * rego_parse_error, rego_compile_error, rego_type_error, rego_unsafe_var_error or
 * rego_recursion_error; `errors` lists all) when a module is invalid.
 */
export function compileRego(modules: Record<string, string>, options: CompileRegoOptions = {}): CompiledPolicy {
  const parsed = [];
  const errors: RegoError[] = [];
  for (const [file, source] of Object.entries(modules)) {
    try {
      parsed.push(parseModule(source, file));
    } catch (err) {
      if (err instanceof RegoError) errors.push(err);
      else throw err;
    }
  }
  if (errors.length) throw compileErrors(errors);
  if (options.strict) {
    for (const m of parsed) errors.push(...strictErrors(m));
    if (errors.length) throw compileErrors(errors);
  }
  const program = new Program(options.builtins ? { builtins: options.builtins } : {});
  program.compileModules(parsed);
  if (program.errors.length) throw compileErrors([...program.errors]);
  const packages = [...new Set(parsed.map((m) => m.package.map((t) => (t.type === 'var' ? t.name : t.type === 'string' ? t.value : '')).join('.')))];
  return new CompiledPolicy(program, packages, options.data === undefined ? {} : fromJSON(options.data));
}
