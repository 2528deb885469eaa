/**
 * The library face of the Rego engine (what `import { compileRego } from 'meshward'` returns).
 *
 * meshward's own callers use `CompiledPolicy` directly (values in the engine's representation, no
 * conversion per request). Library users get plain JSON by default instead: results that
 * `JSON.stringify` prints as OPA's JSON output does, and inputs accepted whatever number type they
 * use. `{ raw: true }` (per policy or per call) returns the engine's values unchanged.
 */
import { type CompileRegoOptions, type CompiledPolicy, type EvaluateOptions, compileRego as compileRaw } from './policy.ts';
import { NumberText, RegoObject, RegoSet, type Value, fromJSON, objectEntries, stringifyJSON } from './value.ts';

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface LibraryOptions {
  /** Return the engine's values (RegoSet, bigint beyond 2^53, …) instead of plain JSON. */
  raw?: boolean;
}

export interface LibraryResult<V> {
  expressions: V[];
  bindings: Record<string, V>;
}

/**
 * Plain JSON for a Rego value: sets become sorted arrays and non-string object keys their JSON
 * text (as `opa eval --format json` prints them); integers beyond 2^53 become their exact decimal
 * text as a string (JavaScript numbers cannot hold them; OPA's Go API hands them out as
 * `json.Number`, which is text too). Everything else is kept as is.
 */
export function toJSON(v: Value): JsonValue {
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'object':
      break;
    default:
      return v;
  }
  if (v === null) return null;
  if (v instanceof NumberText) return v.text();
  if (Array.isArray(v)) return v.map(toJSON);
  if (v instanceof RegoSet) return v.values().map(toJSON);
  const out: { [key: string]: JsonValue } = {};
  for (const [k, x] of v instanceof RegoObject ? objectEntries(v) : Object.entries(v)) {
    const key = typeof k === 'string' ? k : stringifyJSON(k);
    // defineProperty: a `__proto__` key is data, not the prototype.
    Object.defineProperty(out, key, { value: toJSON(x), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Any parsed JSON/YAML (numbers as number or bigint, Maps, Dates) to an engine value. */
export { fromJSON };

function convert(raw: boolean, v: Value): Value | JsonValue {
  return raw ? v : toJSON(v);
}

/** A compiled policy for library users; `compiled` is the engine's own object. */
export class LibraryPolicy {
  readonly compiled: CompiledPolicy;
  readonly #raw: boolean;

  constructor(compiled: CompiledPolicy, raw: boolean) {
    this.compiled = compiled;
    this.#raw = raw;
  }

  get packages(): readonly string[] {
    return this.compiled.packages;
  }

  rules(): string[] {
    return this.compiled.rules();
  }

  evaluate(queryOrEntrypoint: string, input?: unknown, data?: unknown, options?: EvaluateOptions & LibraryOptions): LibraryResult<Value | JsonValue>[] {
    const raw = options?.raw ?? this.#raw;
    const rows = this.compiled.evaluate(queryOrEntrypoint, normalise(input), normalise(data), options);
    return rows.map((r) => ({
      expressions: r.expressions.map((e) => convert(raw, e)),
      bindings: Object.fromEntries(Object.entries(r.bindings).map(([k, b]) => [k, convert(raw, b)])),
    }));
  }

  entrypoint(path: string, options?: EvaluateOptions & LibraryOptions): (input?: unknown, data?: unknown, callOptions?: EvaluateOptions) => Value | JsonValue | undefined {
    const run = this.compiled.entrypoint(path, options);
    const raw = options?.raw ?? this.#raw;
    return (input, data, callOptions) => {
      const v = run(normalise(input), normalise(data), callOptions);
      return v === undefined ? undefined : convert(raw, v);
    };
  }
}

/** Inputs in the engine's representation whatever number type they use (1n → 1). */
function normalise(x: unknown): Value | undefined {
  return x === undefined ? undefined : fromJSON(x);
}

export function compileRego(modules: Record<string, string>, options: CompileRegoOptions & LibraryOptions = {}): LibraryPolicy {
  return new LibraryPolicy(compileRaw(modules, options), options.raw ?? false);
}
