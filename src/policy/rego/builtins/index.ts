/**
 * Every Rego built-in function, keyed by its full name as OPA names it (operators by their internal
 * names: `plus`, `equal`, `internal.member_2`...). The evaluator looks calls up here.
 *
 * Error messages already start with the built-in's name (`strings.replace_n: operand 2 must be
 * string but got number`), as OPA's error `Message` does; the evaluator adds only the location and
 * the code when it prints them (`test-0.rego:4: eval_type_error: ...`).
 */
import { AGGREGATES } from './aggregates.ts';
import { AWS } from './aws.ts';
import { COLLECTIONS } from './collections.ts';
import { CRYPTO } from './crypto.ts';
import type { BuiltinDefinition } from './definition.ts';
import { ENCODING } from './encoding.ts';
import { BuiltinError, BuiltinTypeError } from './errors.ts';
import { GLOB } from './glob.ts';
import { GLOBS } from './globs.ts';
import { GRAPHQL } from './graphql.ts';
import { HTTP } from './http.ts';
import { JSON_SCHEMA } from './jsonschema.ts';
import { JWT } from './jwt.ts';
import { MISC } from './misc.ts';
import { NET } from './net.ts';
import { NUMBERS } from './numbers.ts';
import { OPERATORS } from './operators.ts';
import { REGEX } from './regex.ts';
import { STRINGS } from './strings.ts';
import { TEMPLATE } from './template.ts';
import { TIME } from './time.ts';
import { UNITS } from './units.ts';

export type { BuiltinContext, BuiltinDecl, BuiltinDefinition } from './definition.ts';
export { BuiltinError, BuiltinTypeError } from './errors.ts';
export type { RegoType } from './types.ts';
export { formatType, mayAccept, typeNamesOf } from './types.ts';

const MODULES: ReadonlyArray<readonly BuiltinDefinition[]> = [
  OPERATORS,
  NUMBERS,
  AGGREGATES,
  STRINGS,
  REGEX,
  GLOB,
  GLOBS,
  COLLECTIONS,
  ENCODING,
  TIME,
  NET,
  UNITS,
  JWT,
  CRYPTO,
  MISC,
  HTTP,
  JSON_SCHEMA,
  GRAPHQL,
  AWS,
  TEMPLATE,
];

/** Prefixes a built-in's error messages with its name (once). */
function withNamedErrors(def: BuiltinDefinition): BuiltinDefinition {
  const prefix = `${def.name}: `;
  const inner = def.fn;
  return {
    ...def,
    fn(args, ctx) {
      try {
        return inner(args, ctx);
      } catch (err) {
        if ((err instanceof BuiltinError || err instanceof BuiltinTypeError) && !err.message.startsWith(prefix)) {
          err.message = prefix + err.message;
        }
        throw err;
      }
    },
  };
}

function buildTable(): Map<string, BuiltinDefinition> {
  const table = new Map<string, BuiltinDefinition>();
  for (const mod of MODULES) {
    for (const def of mod) {
      if (table.has(def.name)) throw new Error(`built-in ${def.name} defined twice`);
      table.set(def.name, withNamedErrors(def));
    }
  }
  return table;
}

export const BUILTINS: ReadonlyMap<string, BuiltinDefinition> = buildTable();
