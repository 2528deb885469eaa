/** The Rego engine's public API (the rest of the folder is internal). */
export { compileRego, CompiledPolicy, toQuery } from './policy.ts';
export type { CompileRegoOptions, EvaluateOptions, PreparedQuery, RegoResult } from './policy.ts';
export { RegoError, RegoParseError } from './errors.ts';
export { withBudget, enterBudget, exitBudget, isSliceExhausted, RegoBudgetExceededError, type BudgetOptions } from './budget.ts';
export type { RegoErrorCode, RegoLocation } from './errors.ts';
export { parseModule, parseQuery } from './parser.ts';
export type { Module } from './ast.ts';
export { loadPolicyFiles, readDataFile } from './files.ts';
export { runRegoTests } from './testing.ts';
export type { TestResult } from './testing.ts';
export type { Value } from './value.ts';
// Boundary conversions (for adapters such as regoPolicyEngine in src/policy/index.ts).
export { fromJSON, toJSON, RegoSet } from './value.ts';
// Library face (plain JSON results by default, `{ raw: true }` opt-in): what the package root exports.
export { compileRego as compileRegoForLibrary, LibraryPolicy, toJSON as toPlainJSON } from './library.ts';
export type { JsonValue, LibraryOptions, LibraryResult } from './library.ts';
// The built-in table and type names (for the generated reference in docs/rego-builtins.md).
export { BUILTINS, formatType } from './builtins/index.ts';
