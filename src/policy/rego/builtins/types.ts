/**
 * Static types of built-in arguments and results: a small structural language, enough for the
 * compiler to report `rego_type_error` for statically known wrong arguments as OPA does.
 */
export type RegoType =
  | { readonly kind: 'any' }
  | { readonly kind: 'null' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'number' }
  | { readonly kind: 'string' }
  | { readonly kind: 'array'; readonly of: RegoType }
  | { readonly kind: 'object'; readonly key: RegoType; readonly value: RegoType }
  | { readonly kind: 'set'; readonly of: RegoType }
  | { readonly kind: 'union'; readonly of: readonly RegoType[] };

export const T_ANY: RegoType = Object.freeze({ kind: 'any' });
export const T_NULL: RegoType = Object.freeze({ kind: 'null' });
export const T_BOOLEAN: RegoType = Object.freeze({ kind: 'boolean' });
export const T_NUMBER: RegoType = Object.freeze({ kind: 'number' });
export const T_STRING: RegoType = Object.freeze({ kind: 'string' });

export function tArray(of: RegoType = T_ANY): RegoType {
  return { kind: 'array', of };
}

export function tSet(of: RegoType = T_ANY): RegoType {
  return { kind: 'set', of };
}

export function tObject(key: RegoType = T_ANY, value: RegoType = T_ANY): RegoType {
  return { kind: 'object', key, value };
}

export function tUnion(...of: RegoType[]): RegoType {
  return { kind: 'union', of };
}

export const T_ARRAY_ANY = tArray();
export const T_SET_ANY = tSet();
export const T_OBJECT_ANY = tObject();
/** Any collection OPA iterates: array, set or object. */
export const T_COLLECTION = tUnion(tArray(), tSet(), tObject());
export const T_STRING_SET_OR_ARRAY = tUnion(tArray(T_STRING), tSet(T_STRING));

/** The type names a type admits ('any' admits all seven). */
export function typeNamesOf(t: RegoType): ReadonlySet<string> {
  switch (t.kind) {
    case 'any':
      return new Set(['null', 'boolean', 'number', 'string', 'array', 'object', 'set']);
    case 'union': {
      const out = new Set<string>();
      for (const m of t.of) for (const n of typeNamesOf(m)) out.add(n);
      return out;
    }
    default:
      return new Set([t.kind]);
  }
}

/** True when a value of type `actual` may be accepted where `expected` is required. */
export function mayAccept(expected: RegoType, actual: RegoType): boolean {
  if (expected.kind === 'any' || actual.kind === 'any') return true;
  if (actual.kind === 'union') return actual.of.some((a) => mayAccept(expected, a));
  if (expected.kind === 'union') return expected.of.some((e) => mayAccept(e, actual));
  if (expected.kind !== actual.kind) return false;
  switch (expected.kind) {
    case 'array':
    case 'set':
      return mayAccept(expected.of, (actual as { of: RegoType }).of);
    case 'object': {
      const a = actual as { key: RegoType; value: RegoType };
      return mayAccept(expected.key, a.key) && mayAccept(expected.value, a.value);
    }
    default:
      return true;
  }
}

/** OPA's rendering of a type in type errors (e.g. `array[string]`, `object[any: any]`). */
export function formatType(t: RegoType): string {
  switch (t.kind) {
    case 'array':
      return `array[${formatType(t.of)}]`;
    case 'set':
      return `set[${formatType(t.of)}]`;
    case 'object':
      return `object[${formatType(t.key)}: ${formatType(t.value)}]`;
    case 'union':
      return `any<${t.of.map(formatType).join(', ')}>`;
    default:
      return t.kind;
  }
}
