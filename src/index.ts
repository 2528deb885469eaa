/**
 * meshward's package root: the public library API.
 *
 * Other capabilities add their public API here (one export block each, re-exported from the
 * capability's own `index.ts`).
 */

// Rego engine: compile modules once, evaluate queries or entrypoints many times.
export { compileRego, CompiledPolicy, RegoError, RegoParseError } from './policy/rego/index.ts';
export type {
  CompileRegoOptions,
  EvaluateOptions,
  PreparedQuery,
  RegoErrorCode,
  RegoLocation,
  RegoResult,
  Value as RegoValue,
} from './policy/rego/index.ts';
