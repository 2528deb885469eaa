/**
 * meshward's package root: the public library API.
 *
 * Other capabilities add their public API here (one export block each, re-exported from the
 * capability's own `index.ts`).
 */

// Rego engine: compile modules once, evaluate queries or entrypoints many times.
// Results are plain JSON (sets as sorted arrays, integers beyond 2^53 as decimal strings) unless
// `{ raw: true }`; inputs are normalised whatever number type they use (number or bigint).
export { compileRego, LibraryPolicy, toJSON, fromJSON } from './policy/rego/library.ts';
export type { JsonValue, LibraryOptions, LibraryResult } from './policy/rego/library.ts';
export { CompiledPolicy, RegoError, RegoParseError } from './policy/rego/index.ts';
export type {
  CompileRegoOptions,
  EvaluateOptions,
  PreparedQuery,
  RegoErrorCode,
  RegoLocation,
  RegoResult,
  Value as RegoValue,
} from './policy/rego/index.ts';
