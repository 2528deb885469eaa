/** Messages between the evaluation pool (main thread) and its workers. Plain data only (structured clone). */

/** What a worker compiles: the same sources the main thread compiled for the snapshot. */
export type PolicySource =
  | { kind: 'rego'; modules: Record<string, string>; entrypoint: string; /** Base data document (plain JSON, bigints beyond 2^53). */ data?: unknown }
  | { kind: 'wasm'; bundle: Uint8Array; entrypoint: string };

export type ToWorker =
  | { t: 'load'; key: string; source: PolicySource }
  | { t: 'drop'; key: string }
  | { t: 'eval'; id: number; key: string; input: unknown; nowMs: number | undefined; budgetMs: number };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'loaded'; key: string; error?: string }
  | { t: 'result'; id: number; value: unknown }
  | { t: 'error'; id: number; budget: boolean; code: string; message: string };
