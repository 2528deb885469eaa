/**
 * The document policy engines `meshward serve` registers with ext_authz: `RegoPolicy` documents are
 * compiled by meshward's Rego engine, or loaded from an `opa build -t wasm` bundle and run with
 * @open-policy-agent/opa-wasm.
 */
import { type CompiledPolicy, type PolicyEngine, regoPolicyEngine } from './index.ts';
import { compileRego, fromJSON, toJSON } from './rego/index.ts';
import { loadWasmBundle } from './wasm/index.ts';

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

/** The engine for `RegoPolicy` documents (modules or wasm bundles). */
export function createRegoPolicyEngine(): PolicyEngine {
  return regoPolicyEngine({ compileRego, fromJSON, toJSON, loadWasmBundle: loadWasmPolicy });
}
