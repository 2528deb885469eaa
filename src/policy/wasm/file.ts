/** Thin I/O shell: loads a bundle from disk (the loader itself works on bytes). */
import { readFile } from 'node:fs/promises';
import type { ReadBundleOptions } from './bundle.ts';
import { WasmPolicyError } from './errors.ts';
import { loadWasmBundle, type WasmPolicy } from './policy.ts';

export async function loadWasmBundleFile(path: string, options?: ReadBundleOptions): Promise<WasmPolicy> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new WasmPolicyError('WASM_BUNDLE_INVALID', `cannot read wasm bundle ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  return loadWasmBundle(bytes, options);
}
