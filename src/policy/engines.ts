/**
 * The document policy engines `meshward serve` registers with ext_authz: `RegoPolicy` documents are
 * compiled by meshward's Rego engine, or loaded from an `opa build -t wasm` bundle and run with
 * @open-policy-agent/opa-wasm.
 *
 * Every evaluation has a time budget (RegoPolicy `evaluationBudget`, else Mesh
 * `extAuthz.policyEvaluationBudget`, 50 ms). A Rego evaluation first runs inline with a small slice
 * (INLINE_SLICE_MS): fast policies stay on the event loop, as fast as without a budget. One that
 * runs out of its slice is abandoned and re-run in a worker thread (./pool) with the full budget,
 * so a slow policy costs the event loop one slice, not its whole run (and after three in a row,
 * nothing for a second: see sliced.ts). Wasm evaluations always run
 * in a worker: a wasm loop cannot be interrupted in-thread, only its thread terminated.
 */
import { parseDuration } from '../config/duration.ts';
import type { ConfigDocument, ConfigSnapshot } from '../config/index.ts';
import type { RegoPolicySpec } from '../config/kinds/rego-policy.ts';
import { type CompiledPolicy, type PolicyEngine, regoPolicyEngine } from './index.ts';
import { type EvaluationPool, type PolicySource, type PooledPolicy, pooledPolicy, sharedEvaluationPool } from './pool/index.ts';
import { compileRego, fromJSON, toJSON } from './rego/index.ts';
import { regoSources } from './rego-sources.ts';
import { SlicedPolicy } from './sliced.ts';
import { loadWasmBundle } from './wasm/index.ts';

/**
 * Work a Rego evaluation may do on the event loop before it moves to a worker. At 5 slow
 * evaluations a second, 1 ms each is 0.5 % of the loop.
 */
export const INLINE_SLICE_MS = 1;

/** How long compiling a wasm bundle's policy waits for the evaluation workers to start. */
const WORKER_START_WAIT_MS = 10_000;

async function loadWasmPolicy(bundle: Buffer, entrypoint: string): Promise<CompiledPolicy> {
  const policy = await loadWasmBundle(bundle);
  const run = policy.entrypoint(entrypoint);
  return {
    evaluate(input, context) {
      const value = run(fromJSON(input), undefined, context?.now);
      return value === undefined ? undefined : toJSON(value);
    },
  };
}

/** Mesh `extAuthz.policyEvaluationBudget`'s default, for snapshots built without a resolved Mesh (tests, tools). */
const DEFAULT_BUDGET = '50ms';

function budgetOf(spec: RegoPolicySpec, snapshot: ConfigSnapshot): number {
  return parseDuration(spec.evaluationBudget ?? snapshot.mesh?.extAuthz?.policyEvaluationBudget ?? DEFAULT_BUDGET);
}

/** The sources a worker compiles: the same files the snapshot holds. */
async function sourceOf(doc: ConfigDocument, snapshot: ConfigSnapshot, spec: RegoPolicySpec): Promise<PolicySource> {
  const entrypoint = spec.entrypoint ?? 'envoy/authz/allow';
  // Read again (already checked by the inline compile, which ran first).
  const read = (ref: string) => snapshot.readFile(doc, ref)!;
  if (spec.wasmBundle) return { kind: 'wasm', bundle: new Uint8Array(read(spec.wasmBundle)), entrypoint };
  const { modules, data } = await regoSources(doc, read);
  return { kind: 'rego', modules, entrypoint, ...(Object.keys(data).length > 0 ? { data } : {}) };
}

/** Always in a worker (wasm). */
function pooled(pool: EvaluationPool, policy: PooledPolicy, budgetMs: number): CompiledPolicy {
  return { evaluate: (input, context) => pool.evaluate(policy, input, context?.now, budgetMs) };
}

export interface RegoPolicyEngineOptions {
  /** Worker pool for evaluations off the event loop (default: the process-wide one). */
  pool?: EvaluationPool;
}

/** The engine for `RegoPolicy` documents (modules or wasm bundles), with evaluation budgets. */
export function createRegoPolicyEngine(options: RegoPolicyEngineOptions = {}): PolicyEngine {
  const base = regoPolicyEngine({ compileRego, fromJSON, toJSON, loadWasmBundle: loadWasmPolicy });
  return {
    kind: 'RegoPolicy',
    async compile(doc, snapshot) {
      // Compiled here first: a bad module or bundle is a compile error of the snapshot, as before.
      const inline = await base.compile(doc, snapshot);
      const spec = doc.spec as RegoPolicySpec;
      const pool = options.pool ?? sharedEvaluationPool();
      pool.warm();
      const policy = pooledPolicy(`${doc.metadata.namespace}/${doc.metadata.name}`, await sourceOf(doc, snapshot, spec));
      const budgetMs = budgetOf(spec, snapshot);
      if (spec.wasmBundle) {
        // Every evaluation of a bundle runs in a worker: the snapshot is served once they run (or
        // after WORKER_START_WAIT_MS, when they cannot start: its evaluations then fail with why).
        await Promise.race([pool.ready(), new Promise((r) => setTimeout(r, WORKER_START_WAIT_MS).unref())]);
        return pooled(pool, policy, budgetMs);
      }
      const sliced = new SlicedPolicy(inline, pool, policy, budgetMs, { sliceMs: INLINE_SLICE_MS });
      // The bundle revision travels with the policy into decision records.
      return inline.bundle ? Object.assign(sliced, { bundle: inline.bundle }) : sliced;
    },
  };
}
