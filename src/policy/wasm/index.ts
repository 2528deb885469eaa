/** OPA wasm bundles (`opa build -t wasm`) evaluated with @open-policy-agent/opa-wasm. */
export { readBundle } from './bundle.ts';
export type { ReadBundleOptions, WasmBundle } from './bundle.ts';
export { WasmPolicyError } from './errors.ts';
export { loadWasmBundleFile } from './file.ts';
export type { WasmErrorCode } from './errors.ts';
export { loadWasmBundle, loadWasmModule, WasmPolicy } from './policy.ts';
export type { WasmResult } from './policy.ts';
