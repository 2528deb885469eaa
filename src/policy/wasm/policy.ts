/**
 * An OPA wasm policy behind the same evaluate shape as the Rego engine:
 * `evaluate(entrypoint, input, data) → [{ expressions: [value], bindings: {} }]` (empty when
 * undefined). `@open-policy-agent/opa-wasm` drives the module through the OPA wasm ABI.
 *
 * Built-ins that OPA compiles to host calls (`opa_builtinN`: io.jwt.*, time.*, net.cidr_*…) are
 * served by meshward's own implementations, except the few opa-wasm ships itself (its `sprintf`,
 * `json.is_valid`, `regex.split`, `yaml.*` take precedence inside the library). As in OPA's default
 * mode, a host built-in error makes the call undefined.
 */
import { type LoadedPolicy, loadPolicy } from '@open-policy-agent/opa-wasm';
import { BUILTINS, type BuiltinContext, BuiltinError, BuiltinTypeError } from '../rego/builtins/index.ts';
import { clockNanos } from '../rego/runtime.ts';
import { fromJSON, stringifyJSON, toJSON, type Value } from '../rego/value.ts';
import { readBundle, type ReadBundleOptions, type WasmBundle } from './bundle.ts';
import { WasmPolicyError } from './errors.ts';

export interface WasmResult {
  expressions: Value[];
  bindings: Record<string, Value>;
}

/** The evaluation a host built-in call belongs to (time.now_ns is fixed per evaluation). */
interface HostState {
  ctx: BuiltinContext;
}

/**
 * `nowMs`: the decision's clock time (ext_authz passes the check's), else the wall clock. Read on
 * the first `time.now_ns()` call and fixed for the evaluation, as in the Rego engine.
 */
function newContext(nowMs?: number): BuiltinContext {
  let ns: bigint | undefined;
  return { now: () => (ns ??= clockNanos(nowMs)), strict: false, print: () => {}, cache: new Map() };
}

type HostFunction = (...args: unknown[]) => unknown;

function hostBuiltins(state: HostState): Record<string, HostFunction> {
  const out: Record<string, HostFunction> = {};
  for (const [name, def] of BUILTINS) {
    out[name] = (...args: unknown[]) => {
      try {
        const result = def.fn(args.map(fromJSON), state.ctx);
        // Plain JSON back into wasm memory (opa-wasm serialises with JSON.stringify).
        return result === undefined ? undefined : JSON.parse(stringifyJSON(result));
      } catch (err) {
        if (err instanceof BuiltinError || err instanceof BuiltinTypeError) return undefined;
        throw err;
      }
    };
  }
  return out;
}

export class WasmPolicy {
  readonly #policy: LoadedPolicy;
  readonly #host: HostState;
  readonly #bundleData: Value;
  #loadedData: Value | undefined;
  /** Entrypoint names the module exports (e.g. `envoy/authz/allow`). */
  readonly entrypoints: readonly string[];
  readonly manifest: Readonly<Record<string, unknown>>;

  constructor(policy: LoadedPolicy, bundle: Pick<WasmBundle, 'data' | 'manifest'>, host: HostState) {
    this.#policy = policy;
    this.#host = host;
    this.#bundleData = bundle.data;
    this.manifest = bundle.manifest;
    const eps = policy.entrypoints as unknown;
    this.entrypoints = Object.freeze(typeof eps === 'object' && eps !== null ? Object.keys(eps).sort() : []);
    this.#useData(bundle.data);
  }

  /** Evaluates one entrypoint; `data` replaces the bundle's data for this and later calls until changed. */
  evaluate(entrypoint: string, input?: Value, data?: Value): WasmResult[] {
    const value = this.entrypoint(entrypoint)(input, data);
    return value === undefined ? [] : [{ expressions: [value], bindings: {} }];
  }

  /**
   * Hot path: a function returning the entrypoint's value, or undefined. `nowMs` fixes what
   * `time.now_ns()` answers during that evaluation (OPA reads the clock once per query).
   */
  entrypoint(name: string): (input?: Value, data?: Value, nowMs?: number) => Value | undefined {
    if (!this.entrypoints.includes(name)) {
      throw new WasmPolicyError('WASM_ENTRYPOINT_UNKNOWN', `entrypoint ${JSON.stringify(name)} is not in the wasm policy (have: ${this.entrypoints.join(', ') || 'none'})`);
    }
    return (input, data, nowMs) => {
      this.#useData(data ?? this.#bundleData);
      this.#host.ctx = newContext(nowMs);
      let rows: unknown;
      try {
        rows = this.#policy.evaluate(input === undefined ? undefined : toJSON(input), name);
      } catch (err) {
        throw new WasmPolicyError('WASM_EVAL_FAILED', `wasm policy failed in ${name}: ${describe(err)}`, { cause: err });
      }
      if (!Array.isArray(rows)) throw new WasmPolicyError('WASM_EVAL_FAILED', `wasm policy returned ${typeof rows} instead of a result set`);
      if (rows.length === 0) return undefined;
      const first = rows[0] as Record<string, unknown> | null;
      if (typeof first !== 'object' || first === null || !('result' in first)) {
        throw new WasmPolicyError('WASM_EVAL_FAILED', 'wasm policy returned a result row without "result"');
      }
      return fromJSON(first.result);
    };
  }

  #useData(data: Value): void {
    if (data === this.#loadedData) return;
    // Large integers and sets survive the trip as JSON text.
    this.#policy.setData(new TextEncoder().encode(stringifyJSON(data)).buffer as ArrayBuffer);
    this.#loadedData = data;
  }
}

function describe(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}

/** Instantiates policy.wasm bytes (no bundle) with optional base data. */
async function instantiate(wasm: Uint8Array, bundle: Pick<WasmBundle, 'data' | 'manifest'>): Promise<WasmPolicy> {
  const host: HostState = { ctx: newContext() };
  let policy: LoadedPolicy;
  try {
    policy = await loadPolicy(wasm, undefined, hostBuiltins(host));
  } catch (err) {
    throw new WasmPolicyError('WASM_MODULE_INVALID', `policy.wasm cannot be loaded: ${describe(err)}`, { cause: err });
  }
  return new WasmPolicy(policy, bundle, host);
}

export async function loadWasmModule(wasm: Uint8Array, data: Value = {}): Promise<WasmPolicy> {
  return instantiate(wasm, { data: data as WasmBundle['data'], manifest: {} });
}

/** Reads an `opa build -t wasm` bundle (.tar.gz bytes) and instantiates its policy. */
export async function loadWasmBundle(archive: Uint8Array, options?: ReadBundleOptions): Promise<WasmPolicy> {
  const bundle = await readBundle(archive, options);
  return instantiate(bundle.wasm, bundle);
}
