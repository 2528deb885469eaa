/**
 * Every Rego built-in function, keyed by its full name as OPA names it (operators by their internal
 * names: `plus`, `equal`, `internal.member_2`...). The evaluator looks calls up here.
 */
import type { BuiltinDefinition } from './definition.ts';

export type { BuiltinContext, BuiltinDecl, BuiltinDefinition } from './definition.ts';
export { BuiltinError, BuiltinTypeError } from './errors.ts';
export type { RegoType } from './types.ts';
export { formatType, mayAccept, typeNamesOf } from './types.ts';

const MODULES: ReadonlyArray<readonly BuiltinDefinition[]> = [];

function buildTable(): Map<string, BuiltinDefinition> {
  const table = new Map<string, BuiltinDefinition>();
  for (const mod of MODULES) {
    for (const def of mod) {
      if (table.has(def.name)) throw new Error(`built-in ${def.name} defined twice`);
      table.set(def.name, def);
    }
  }
  return table;
}

export const BUILTINS: ReadonlyMap<string, BuiltinDefinition> = buildTable();
