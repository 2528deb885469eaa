/**
 * Policy engines: one interface for every engine that compiles a policy document once per config
 * snapshot and then evaluates the OPA-Envoy input per request. The YAML AuthorizationPolicy engine
 * (Istio semantics, set-level) lives in `./yaml/`; document engines (Rego modules, OPA wasm
 * bundles, or anything else) register for a config kind:
 *
 * @example Registering the Rego engine (one line):
 * ```ts
 * authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON }));
 * ```
 * A `RegoPolicy` is then evaluated for the workloads it selects, and any CUSTOM AuthorizationPolicy
 * whose `provider.name` names it consults it.
 */
import type { ConfigDocument, ConfigSnapshot } from '../config/index.ts';
import type { RegoPolicySpec } from '../config/kinds/rego-policy.ts';
import { PolicyCompileError, PolicyEngineMissingError, PolicyUndefinedDecisionError } from './errors.ts';
import { regoSources } from './rego-sources.ts';

export * from './errors.ts';
export { compileAuthorizationPolicies, compileAuthorizationPoliciesSliced, AuthorizationPolicySet, type YamlVerdict, type YamlPolicy, type PolicyMatch } from './yaml/index.ts';

/** Header values in an OPA-Envoy result: a string, or several (sent as separate headers). */
export type HeaderValues = Record<string, string | string[]>;

/** The object form of an OPA-Envoy decision (what Rego authors return from `envoy/authz/allow`). */
export interface OpaEnvoyResult {
  allowed: boolean;
  /** Allowed: headers set on the upstream request. Denied: headers on the denied response. */
  headers?: HeaderValues;
  response_headers_to_add?: HeaderValues;
  request_headers_to_remove?: string[];
  query_parameters_to_set?: HeaderValues;
  query_parameters_to_remove?: string[];
  /** Denied response body. */
  body?: string;
  /** Denied response status (default 403). */
  http_status?: number;
  dynamic_metadata?: Record<string, unknown>;
}

/** What an engine decides: a boolean, or the OPA-Envoy object. */
export type PolicyResult = boolean | OpaEnvoyResult;

/**
 * Per-call facts an engine may use besides the input. ext_authz can pass its check context as it
 * is (it has these fields), so a call allocates nothing for them.
 */
export interface PolicyCallContext {
  /** Clock time of the check (ms since the epoch): Rego's `time.now_ns()` reads it instead of the wall clock. */
  readonly now?: number;
}

/** A policy compiled for one snapshot. Must be safe to call concurrently and must not mutate `input`. */
export interface CompiledPolicy {
  /** Returns the raw decision; `undefined` (no decision) is reported as an error by the caller. */
  evaluate(input: unknown, context?: PolicyCallContext): unknown;
  /** The OPA bundle the policy came from (its file and `.manifest` revision), for decision records. */
  readonly bundle?: { name: string; revision: string };
}

/** Compiles documents of one config kind. */
export interface PolicyEngine {
  /** The config kind it compiles, e.g. `RegoPolicy`. */
  readonly kind: string;
  compile(doc: ConfigDocument, snapshot: ConfigSnapshot): CompiledPolicy | Promise<CompiledPolicy>;
}

/** The engines ext_authz knows, by config kind. */
export class PolicyEngines {
  readonly #engines = new Map<string, PolicyEngine>();

  /** Registers (or replaces) the engine for `engine.kind`. */
  register(engine: PolicyEngine): this {
    this.#engines.set(engine.kind, engine);
    return this;
  }

  get(kind: string): PolicyEngine {
    const engine = this.#engines.get(kind);
    if (!engine) throw new PolicyEngineMissingError(kind);
    return engine;
  }

  has(kind: string): boolean {
    return this.#engines.has(kind);
  }

  kinds(): string[] {
    return [...this.#engines.keys()];
  }
}

function isHeaderValues(v: unknown): v is HeaderValues {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    && Object.values(v).every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((y) => typeof y === 'string')));
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/**
 * Validates a raw engine value into a PolicyResult once (never re-checked downstream). Undefined,
 * or an object without a boolean `allowed`, is the OPA-Envoy "undefined decision" error; ill-typed
 * optional fields are errors too, rather than silently ignored.
 */
export function toPolicyResult(raw: unknown, policy: string): PolicyResult {
  if (typeof raw === 'boolean') return raw;
  if (raw === undefined || raw === null) throw new PolicyUndefinedDecisionError(policy, 'the decision is undefined');
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyUndefinedDecisionError(policy, `the decision is a ${Array.isArray(raw) ? 'array' : typeof raw}, not a boolean or an object with "allowed"`);
  const r = raw as Record<string, unknown>;
  if (typeof r.allowed !== 'boolean') throw new PolicyUndefinedDecisionError(policy, 'the decision object has no boolean "allowed"');
  const bad = (field: string, want: string) => new PolicyUndefinedDecisionError(policy, `"${field}" must be ${want}`);
  for (const f of ['headers', 'response_headers_to_add', 'query_parameters_to_set'] as const) {
    if (r[f] !== undefined && !isHeaderValues(r[f])) throw bad(f, 'an object of strings or string arrays');
  }
  for (const f of ['request_headers_to_remove', 'query_parameters_to_remove'] as const) {
    if (r[f] !== undefined && !isStrings(r[f])) throw bad(f, 'an array of strings');
  }
  if (r.body !== undefined && typeof r.body !== 'string') throw bad('body', 'a string');
  if (r.http_status !== undefined && (typeof r.http_status !== 'number' || !Number.isInteger(r.http_status) || r.http_status < 100 || r.http_status > 599)) {
    throw bad('http_status', 'an HTTP status code');
  }
  if (r.dynamic_metadata !== undefined && (typeof r.dynamic_metadata !== 'object' || r.dynamic_metadata === null || Array.isArray(r.dynamic_metadata))) {
    throw bad('dynamic_metadata', 'an object');
  }
  return r as unknown as OpaEnvoyResult;
}

/** Per-call options ext_authz passes to a Rego engine: the evaluation time (`time.now_ns()`) in ms since the epoch. */
export interface RegoCallOptions {
  nowMs?: number;
}

/**
 * What ext_authz needs from a Rego engine: `compileRego(modules)` returning a policy with a hot
 * path `entrypoint(path)(input, data, options)` (the value, or undefined) and/or `evaluate(entrypoint,
 * input, data, options)` (a value, or OPA-style result rows `[{ expressions: [value] }]`). `V` is the
 * engine's value type; `fromJSON`/`toJSON` convert at the boundary when it is not plain JSON.
 * `options` is passed only when the caller supplies a time; engines may ignore it.
 */
export interface RegoEngineApi<V> {
  compileRego(modules: Record<string, string>): {
    entrypoint?(path: string): (input?: V, data?: V, options?: RegoCallOptions) => V | undefined;
    evaluate(entrypoint: string, input?: V, data?: V, options?: RegoCallOptions): unknown;
  };
  fromJSON?(value: unknown): V;
  toJSON?(value: V): unknown;
}

/** An engine that loads an OPA wasm bundle (`opa build -t wasm`). */
export type WasmBundleLoader = (bundle: Buffer, entrypoint: string) => Promise<CompiledPolicy> | CompiledPolicy;

interface ResultRow { expressions: unknown[] }
const isRows = (r: unknown): r is ResultRow[] => Array.isArray(r) && r.every((x) => typeof x === 'object' && x !== null && Array.isArray((x as ResultRow).expressions));

/**
 * Adapts a Rego engine (and optionally a wasm bundle loader) into a PolicyEngine for `RegoPolicy`
 * documents: module files are read from the snapshot, compiled once, and evaluated at
 * `spec.entrypoint` (`envoy/authz/allow` by default).
 * @example
 * authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON }));
 */
export function regoPolicyEngine<V = unknown>(options: RegoEngineApi<V> & { loadWasmBundle?: WasmBundleLoader; data?: unknown }): PolicyEngine {
  const fromJSON = options.fromJSON ?? ((x: unknown) => x as V);
  const toJSON = options.toJSON ?? ((v: V) => v as unknown);
  return {
    kind: 'RegoPolicy',
    async compile(doc, snapshot) {
      const spec = doc.spec as RegoPolicySpec;
      const id = `${doc.metadata.namespace}/${doc.metadata.name}`;
      const location = { policy: id, file: doc.source.file, line: doc.source.line };
      const entrypoint = spec.entrypoint ?? 'envoy/authz/allow';
      const read = (ref: string) => {
        const content = snapshot.readFile(doc, ref);
        if (!content) throw new PolicyCompileError(`file "${ref}" is not in the configuration snapshot`, location);
        return content;
      };
      try {
        if (spec.wasmBundle) {
          if (!options.loadWasmBundle) throw new PolicyCompileError('wasm bundles are not supported by this engine', location);
          return await options.loadWasmBundle(read(spec.wasmBundle), entrypoint);
        }
        const sources = await regoSources(doc, read);
        const compiled = options.compileRego(sources.modules);
        // Data documents of the policy (spec.data, a bundle's data files), else the engine's base data.
        const data = fromJSON(Object.keys(sources.data).length > 0 ? sources.data : (options.data ?? {}));
        const bundle = sources.bundle ? { bundle: sources.bundle } : {};
        // Options only when a time is supplied: without one the call is exactly as before.
        const callOptions = (context?: PolicyCallContext): RegoCallOptions | undefined => (context?.now === undefined ? undefined : { nowMs: context.now });
        if (typeof compiled.entrypoint === 'function') {
          const run = compiled.entrypoint(entrypoint);
          return { ...bundle, evaluate: (input, context) => { const v = run(fromJSON(input), data, callOptions(context)); return v === undefined ? undefined : toJSON(v); } };
        }
        return {
          ...bundle,
          evaluate(input, context) {
            const r = compiled.evaluate(entrypoint, fromJSON(input), data, callOptions(context));
            if (!isRows(r)) return r;
            return r.length === 0 ? undefined : toJSON(r[0]!.expressions[0] as V);
          },
        };
      } catch (err) {
        throw PolicyCompileError.at(err, location);
      }
    },
  };
}
