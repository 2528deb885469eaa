/**
 * Rego runtime values and every operation on them.
 *
 * JSON-shaped data is used as plain JS values so request input needs no conversion pass:
 * `null`, `boolean`, `number`, `string`, arrays, and plain objects (all keys strings). Special
 * representations exist only where JSON has no equivalent:
 * - `bigint` for integers beyond ±2^53 (OPA keeps arbitrary precision). Invariant: a bigint value is
 *   never inside the safe-integer range — `normalizeNumber` folds it back to a `number`.
 * - `RegoSet` for sets.
 * - `RegoObject` for objects with at least one non-string key (`makeObject` picks the representation).
 * - `NumberText` for number literals beyond float64's range (`2e308`), kept as their text as OPA does.
 *
 * Values are immutable by convention once handed to the evaluator; `RegoSet.add` / `RegoObject.set`
 * exist for construction only.
 */

export type Value = null | boolean | number | bigint | string | Value[] | PlainObject | RegoObject | RegoSet | NumberText;

/** An object whose keys are all strings (JSON object). */
export interface PlainObject {
  [key: string]: Value;
}

export type TypeName = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object' | 'set';

/** Order of the types in OPA's total order of values. */
const TYPE_RANK: Record<TypeName, number> = {
  null: 0,
  boolean: 1,
  number: 2,
  string: 3,
  array: 4,
  object: 5,
  set: 6,
};

// ---------------------------------------------------------------------------------------------
// Sets and non-string-keyed objects
// ---------------------------------------------------------------------------------------------

/**
 * Base of the values that are JS objects without being JSON arrays or objects (sets, objects with
 * non-string keys, number literals kept as text): type tests exclude them with one `instanceof`.
 */
abstract class BoxedValue {}

/** A Rego set: unique by `keyOf`, iterated in OPA's value order. */
export class RegoSet extends BoxedValue {
  #items = new Map<string, Value>();
  #sorted: Value[] | undefined;

  constructor(values?: Iterable<Value>) {
    super();
    if (values) for (const v of values) this.add(v);
  }

  /** Adds a value (construction only); returns this for chaining. */
  add(v: Value): this {
    const k = keyOf(v);
    if (!this.#items.has(k)) {
      this.#items.set(k, v);
      this.#sorted = undefined;
    }
    return this;
  }

  has(v: Value): boolean {
    return this.#items.has(keyOf(v));
  }

  /** Membership by a precomputed key (hot path for the evaluator's indexes). */
  hasKey(key: string): boolean {
    return this.#items.has(key);
  }

  get size(): number {
    return this.#items.size;
  }

  /** Elements in OPA order (sorted). The returned array must not be modified. */
  values(): readonly Value[] {
    if (!this.#sorted) this.#sorted = [...this.#items.values()].sort(compare);
    return this.#sorted;
  }

  /** Elements in insertion order (cheaper when order does not matter). */
  unorderedValues(): IterableIterator<Value> {
    return this.#items.values();
  }

  [Symbol.iterator](): Iterator<Value> {
    return this.values()[Symbol.iterator]();
  }
}

/** An object with at least one non-string key. Keys unique by `keyOf`, iterated in OPA order. */
export class RegoObject extends BoxedValue {
  #items = new Map<string, [Value, Value]>();
  #sorted: Array<[Value, Value]> | undefined;

  constructor(entries?: Iterable<readonly [Value, Value]>) {
    super();
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  /** Sets a key (construction only); returns this. */
  set(key: Value, value: Value): this {
    const k = keyOf(key);
    const existing = this.#items.get(k);
    if (existing) existing[1] = value;
    else {
      this.#items.set(k, [key, value]);
      this.#sorted = undefined;
    }
    return this;
  }

  get(key: Value): Value | undefined {
    return this.#items.get(keyOf(key))?.[1];
  }

  has(key: Value): boolean {
    return this.#items.has(keyOf(key));
  }

  get size(): number {
    return this.#items.size;
  }

  /** Entries sorted by key in OPA order. The returned array must not be modified. */
  entries(): ReadonlyArray<readonly [Value, Value]> {
    if (!this.#sorted) this.#sorted = [...this.#items.values()].sort((a, b) => compare(a[0], b[0]));
    return this.#sorted;
  }
}

/**
 * A number literal too large for a float64 (`2e308`). OPA keeps number literals as their text and
 * converts only on use, so such a literal prints as written (sprintf, json.marshal, `print`) while
 * comparison and arithmetic use its exact integer value (such literals are always integers), and
 * arithmetic results are ordinary numbers again. Text and value are reached through methods only,
 * so a path lookup such as `x.text` finds nothing on it.
 */
export class NumberText extends BoxedValue {
  readonly #text: string;
  readonly #value: bigint;

  constructor(text: string, value: bigint) {
    super();
    this.#text = text;
    this.#value = value;
  }

  text(): string {
    return this.#text;
  }

  value(): bigint {
    return this.#value;
  }
}

// ---------------------------------------------------------------------------------------------
// Type tests
// ---------------------------------------------------------------------------------------------

/** A JS number or bigint; `NumberText` literals are not included (see `numericValue`). */
export function isNumber(v: Value | undefined): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** The numeric value of any number representation, or undefined for non-numbers. */
export function numericValue(v: Value | undefined): number | bigint | undefined {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  return v instanceof NumberText ? v.value() : undefined;
}

export function isString(v: Value | undefined): v is string {
  return typeof v === 'string';
}

export function isArray(v: Value | undefined): v is Value[] {
  return Array.isArray(v);
}

export function isSet(v: Value | undefined): v is RegoSet {
  return v instanceof RegoSet;
}

/** A plain (string-keyed) object. */
export function isPlainObject(v: Value | undefined): v is PlainObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof BoxedValue);
}

/** Any Rego object, whatever its representation. */
export function isObject(v: Value | undefined): v is PlainObject | RegoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (!(v instanceof BoxedValue) || v instanceof RegoObject);
}

/** True for arrays, objects and sets. */
export function isCollection(v: Value | undefined): v is Value[] | PlainObject | RegoObject | RegoSet {
  return typeof v === 'object' && v !== null && !(v instanceof NumberText);
}

export function typeName(v: Value): TypeName {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
    case 'bigint':
      return 'number';
    case 'boolean':
      return 'boolean';
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'array';
      if (v instanceof RegoSet) return 'set';
      if (v instanceof NumberText) return 'number';
      return 'object';
  }
}

// ---------------------------------------------------------------------------------------------
// Objects (both representations)
// ---------------------------------------------------------------------------------------------

const hasOwn = Object.prototype.hasOwnProperty;

export function objectGet(o: PlainObject | RegoObject, key: Value): Value | undefined {
  if (o instanceof RegoObject) return o.get(key);
  if (typeof key !== 'string') return undefined;
  return hasOwn.call(o, key) ? o[key] : undefined;
}

export function objectHas(o: PlainObject | RegoObject, key: Value): boolean {
  if (o instanceof RegoObject) return o.has(key);
  return typeof key === 'string' && hasOwn.call(o, key);
}

export function objectSize(o: PlainObject | RegoObject): number {
  return o instanceof RegoObject ? o.size : Object.keys(o).length;
}

/** Keys in OPA order (sorted). */
export function objectKeys(o: PlainObject | RegoObject): Value[] {
  if (o instanceof RegoObject) return o.entries().map((e) => e[0]);
  return Object.keys(o).sort(compareStrings);
}

/** Entries in OPA order (sorted by key). */
export function objectEntries(o: PlainObject | RegoObject): Array<readonly [Value, Value]> {
  if (o instanceof RegoObject) return o.entries().slice();
  return Object.keys(o)
    .sort(compareStrings)
    .map((k) => [k, o[k]!] as const);
}

/** Sets an own property even for keys such as `__proto__`. */
export function setOwn(o: PlainObject, key: string, value: Value): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/** Builds an object, plain when every key is a string. Later duplicates win. */
export function makeObject(entries: Iterable<readonly [Value, Value]>): PlainObject | RegoObject {
  const list = Array.isArray(entries) ? (entries as Array<readonly [Value, Value]>) : [...entries];
  if (list.every((e) => typeof e[0] === 'string')) {
    const o: PlainObject = {};
    for (const [k, v] of list) setOwn(o, k as string, v);
    return o;
  }
  return new RegoObject(list);
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** Restores the invariant: bigint only outside the safe-integer range; -0 becomes 0. */
export function normalizeNumber(n: number | bigint): number | bigint {
  if (typeof n === 'bigint') return n >= MIN_SAFE && n <= MAX_SAFE ? Number(n) : n;
  if (Object.is(n, -0)) return 0;
  return n;
}

/** Parses a Rego/JSON number literal, keeping integers beyond 2^53 exact. */
export function numberFromText(text: string): number | bigint {
  if (/^-?\d+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
    return normalizeNumber(BigInt(text));
  }
  const n = Number(text);
  // Integer-valued literals in exponent form (1e30) stay exact, as OPA's big numbers do.
  if (Number.isInteger(n) && !Number.isSafeInteger(n) && /^-?\d+(\.\d+)?[eE]\+?\d+$/.test(text)) {
    const exact = exactIntegerFromExponent(text);
    if (exact !== undefined) return exact;
  }
  return normalizeNumber(n);
}

/**
 * A number literal as the compiler keeps it: like `numberFromText`, except that a literal beyond
 * float64's range keeps its text (`NumberText`) instead of becoming Infinity.
 */
export function numberLiteral(text: string): number | bigint | NumberText {
  const n = numberFromText(text);
  if (typeof n === 'number' && !Number.isFinite(n)) {
    const exact = exactIntegerFromExponent(text);
    if (exact !== undefined) return new NumberText(text, exact);
  }
  return n;
}

function exactIntegerFromExponent(text: string): bigint | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?[eE]\+?(\d+)$/.exec(text);
  if (!m) return undefined;
  const frac = m[3] ?? '';
  const exp = Number(m[4]);
  if (exp < frac.replace(/0+$/, '').length || exp > 400) return undefined;
  const digits = m[2]! + frac.padEnd(exp, '0');
  return BigInt(m[1] + digits);
}

/** Converts to an ordinary JS number (may lose precision for bigints). */
export function toNumber(v: number | bigint): number {
  return typeof v === 'number' ? v : Number(v);
}

/** Integer test that works for both representations. */
export function isInteger(v: number | bigint): boolean {
  return typeof v === 'bigint' || Number.isInteger(v);
}

/** Exact integer as bigint, or undefined when not an integer. */
export function toBigInt(v: number | bigint): bigint | undefined {
  if (typeof v === 'bigint') return v;
  return Number.isInteger(v) ? BigInt(v) : undefined;
}

export function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const ai = toBigInt(a);
  const bi = toBigInt(b);
  if (ai !== undefined && bi !== undefined) return ai < bi ? -1 : ai > bi ? 1 : 0;
  const an = toNumber(a);
  const bn = toNumber(b);
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/**
 * A non-integer as an exact decimal (mantissa, digits after the point) from its shortest text, or
 * undefined when that text is too long. OPA does float arithmetic with 64-bit mantissas and prints
 * the shortest text, so `0.1 + 0.2` is `0.3` there; decimal arithmetic on the shortest texts gives
 * the same answers for the values policies use.
 */
function decimalOf(n: number | bigint): [bigint, number] | undefined {
  if (typeof n === 'bigint') return [n, 0];
  if (!Number.isFinite(n)) return undefined;
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(n));
  if (!m) return undefined;
  const frac = m[3] ?? '';
  let scale = frac.length - Number(m[4] ?? 0);
  let mant = BigInt(m[1] + m[2] + frac);
  if (scale < 0) {
    mant *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return scale > 60 ? undefined : [mant, scale];
}

function decimalToNumber(mant: bigint, scale: number): number | bigint {
  if (scale === 0) return normalizeNumber(mant);
  const neg = mant < 0n;
  const digits = (neg ? -mant : mant).toString().padStart(scale + 1, '0');
  const text = `${neg ? '-' : ''}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return normalizeNumber(Number(text));
}

/** Exact decimal a ± b or a × b for non-integers; undefined falls back to float arithmetic. */
function decimalOp(a: number | bigint, b: number | bigint, op: 'add' | 'sub' | 'mul'): number | bigint | undefined {
  const x = decimalOf(a);
  const y = decimalOf(b);
  if (!x || !y) return undefined;
  if (op === 'mul') return decimalToNumber(x[0] * y[0], x[1] + y[1]);
  const scale = Math.max(x[1], y[1]);
  const xm = x[0] * 10n ** BigInt(scale - x[1]);
  const ym = y[0] * 10n ** BigInt(scale - y[1]);
  return decimalToNumber(op === 'add' ? xm + ym : xm - ym, scale);
}

function bothSafeIntegers(a: number | bigint, b: number | bigint): boolean {
  return typeof a === 'number' && typeof b === 'number' && Number.isInteger(a) && Number.isInteger(b);
}

/** a + b with exact integer arithmetic beyond 2^53. */
export function numAdd(a: number | bigint, b: number | bigint): number | bigint {
  if (bothSafeIntegers(a, b)) {
    const r = (a as number) + (b as number);
    if (Number.isSafeInteger(r)) return r;
  }
  const ai = toBigInt(a);
  const bi = toBigInt(b);
  if (ai !== undefined && bi !== undefined) return normalizeNumber(ai + bi);
  return decimalOp(a, b, 'add') ?? normalizeNumber(toNumber(a) + toNumber(b));
}

export function numSub(a: number | bigint, b: number | bigint): number | bigint {
  if (bothSafeIntegers(a, b)) {
    const r = (a as number) - (b as number);
    if (Number.isSafeInteger(r)) return r;
  }
  const ai = toBigInt(a);
  const bi = toBigInt(b);
  if (ai !== undefined && bi !== undefined) return normalizeNumber(ai - bi);
  return decimalOp(a, b, 'sub') ?? normalizeNumber(toNumber(a) - toNumber(b));
}

export function numMul(a: number | bigint, b: number | bigint): number | bigint {
  if (bothSafeIntegers(a, b)) {
    const r = (a as number) * (b as number);
    if (Number.isSafeInteger(r)) return r;
  }
  const ai = toBigInt(a);
  const bi = toBigInt(b);
  if (ai !== undefined && bi !== undefined) return normalizeNumber(ai * bi);
  return decimalOp(a, b, 'mul') ?? normalizeNumber(toNumber(a) * toNumber(b));
}

/** a / b; the caller checks for division by zero. Exact when the quotient is an integer. */
export function numDiv(a: number | bigint, b: number | bigint): number | bigint {
  const ai = toBigInt(a);
  const bi = toBigInt(b);
  if (ai !== undefined && bi !== undefined && bi !== 0n && (typeof a === 'bigint' || typeof b === 'bigint') && ai % bi === 0n) {
    return normalizeNumber(ai / bi);
  }
  if (typeof a === 'number' && typeof b === 'number' && Number.isInteger(a) && Number.isInteger(b)) return normalizeNumber(a / b);
  // Decimal operands: divide the exact decimals (0.3 / 0.1 is 3, as in OPA), rounding at 30 digits.
  const x = decimalOf(a);
  const y = decimalOf(b);
  if (!x || !y || y[0] === 0n) return normalizeNumber(toNumber(a) / toNumber(b));
  const PRECISION = 30;
  const q = (x[0] * 10n ** BigInt(y[1] + PRECISION)) / (y[0] * 10n ** BigInt(x[1]));
  return decimalToNumber(q, PRECISION);
}

/** Integer remainder with the sign of the dividend (Go's %); the caller checks operands. */
export function numRem(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') return normalizeNumber(a % b);
  return normalizeNumber(toBigInt(a)! % toBigInt(b)!);
}

/** Canonical decimal text of a number, as OPA prints it. */
export function formatNumber(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (Number.isInteger(n) && !Number.isSafeInteger(n) && Math.abs(n) < 1e21) return BigInt(n).toString();
  return String(n);
}

// ---------------------------------------------------------------------------------------------
// Order, equality and keys
// ---------------------------------------------------------------------------------------------

/**
 * Compares strings by Unicode code point (as Go compares UTF-8 bytes), not UTF-16 code unit:
 * the two differ only when a surrogate pair meets a BMP character at or above U+E000.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca !== cb) return codePointRank(ca) < codePointRank(cb) ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

function codePointRank(c: number): number {
  if (c >= 0xd800 && c <= 0xdfff) return c + 0x2000;
  if (c >= 0xe000) return c - 0x800;
  return c;
}

/** OPA's total order: null < boolean < number < string < array < object < set. */
export function compare(a: Value, b: Value): number {
  if (a === b) return 0;
  const ta = typeName(a);
  const tb = typeName(b);
  if (ta !== tb) return TYPE_RANK[ta] < TYPE_RANK[tb] ? -1 : 1;
  switch (ta) {
    case 'null':
      return 0;
    case 'boolean':
      return a === b ? 0 : a === false ? -1 : 1;
    case 'number':
      return compareNumbers(numericValue(a)!, numericValue(b)!);
    case 'string':
      return compareStrings(a as string, b as string);
    case 'array':
      return compareSequences(a as Value[], b as Value[]);
    case 'set':
      return compareSequences((a as RegoSet).values(), (b as RegoSet).values());
    case 'object':
      return compareObjects(a as PlainObject | RegoObject, b as PlainObject | RegoObject);
  }
}

function compareSequences(a: readonly Value[], b: readonly Value[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compare(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function compareObjects(a: PlainObject | RegoObject, b: PlainObject | RegoObject): number {
  const ea = objectEntries(a);
  const eb = objectEntries(b);
  const n = Math.min(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    const kc = compare(ea[i]![0], eb[i]![0]);
    if (kc !== 0) return kc;
    const vc = compare(ea[i]![1], eb[i]![1]);
    if (vc !== 0) return vc;
  }
  return ea.length === eb.length ? 0 : ea.length < eb.length ? -1 : 1;
}

export function equals(a: Value, b: Value): boolean {
  if (a === b) return true;
  const t = typeof a;
  if (t === 'string' || t === 'boolean' || typeof b === 'string' || typeof b === 'boolean') return false;
  if (t === 'number' && typeof b === 'number') return a === b;
  if (a === null || b === null) return false;
  const ta = typeName(a);
  if (ta !== typeName(b)) return false;
  switch (ta) {
    case 'number':
      return compareNumbers(numericValue(a)!, numericValue(b)!) === 0;
    case 'array': {
      const x = a as Value[];
      const y = b as Value[];
      if (x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) if (!equals(x[i]!, y[i]!)) return false;
      return true;
    }
    case 'set': {
      const x = a as RegoSet;
      const y = b as RegoSet;
      if (x.size !== y.size) return false;
      for (const v of x.unorderedValues()) if (!y.has(v)) return false;
      return true;
    }
    case 'object':
      return objectsEqual(a as PlainObject | RegoObject, b as PlainObject | RegoObject);
    default:
      return false;
  }
}

function objectsEqual(a: PlainObject | RegoObject, b: PlainObject | RegoObject): boolean {
  if (!(a instanceof RegoObject) && !(b instanceof RegoObject)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) {
      if (!hasOwn.call(b, k) || !equals(a[k]!, b[k]!)) return false;
    }
    return true;
  }
  if (objectSize(a) !== objectSize(b)) return false;
  for (const [k, v] of objectEntries(a)) {
    const other = objectGet(b, k);
    if (other === undefined || !equals(v, other)) return false;
  }
  return true;
}

/**
 * Canonical key: equal values (in Rego's sense) have equal keys, different values different keys.
 * Strings map to themselves (the common case for set membership), unless they start with NUL, which
 * marks the encoded form of every other type.
 */
export function keyOf(v: Value): string {
  if (typeof v === 'string') return v.charCodeAt(0) === 0 ? '\u0000s' + v : v;
  return '\u0000' + encodeKey(v);
}

function encodeKey(v: Value): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'bigint':
      return formatNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v === null) return 'null';
  if (v instanceof NumberText) return formatNumber(v.value());
  if (Array.isArray(v)) return '[' + v.map(encodeKey).join(',') + ']';
  if (v instanceof RegoSet) return '<' + v.values().map(encodeKey).join(',') + '>';
  return (
    '{' +
    objectEntries(v)
      .map(([k, x]) => encodeKey(k) + ':' + encodeKey(x))
      .join(',') +
    '}'
  );
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/** JSON-ish input type accepted by `fromJSON` (parsed JSON or YAML, possibly with bigints). */
export type JsonInput = null | boolean | number | bigint | string | JsonInput[] | { [k: string]: JsonInput };

/**
 * Converts parsed JSON/YAML to a Value. Returns the input itself when nothing needs converting
 * (the common case), so per-request input costs only a walk, no copy.
 */
export function fromJSON(x: unknown): Value {
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return x;
    case 'number':
      return Object.is(x, -0) ? 0 : x;
    case 'bigint':
      return normalizeNumber(x);
    case 'undefined':
      return null;
    case 'object': {
      if (x === null) return null;
      if (x instanceof RegoSet || x instanceof RegoObject || x instanceof NumberText) return x;
      if (Array.isArray(x)) {
        let out: Value[] | undefined;
        for (let i = 0; i < x.length; i++) {
          const c = fromJSON(x[i]);
          if (c !== x[i] && !out) out = x.slice(0, i) as Value[];
          if (out) out.push(c);
        }
        return out ?? (x as Value[]);
      }
      if (x instanceof Date) return x.toISOString();
      if (x instanceof Map) return makeObject([...x.entries()].map(([k, v]) => [fromJSON(k), fromJSON(v)] as const));
      let out: PlainObject | undefined;
      const src = x as Record<string, unknown>;
      const keys = Object.keys(src);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        const c = fromJSON(src[k]);
        if (c !== src[k] && !out) {
          out = {};
          for (let j = 0; j < i; j++) setOwn(out, keys[j]!, src[keys[j]!] as Value);
        }
        if (out) setOwn(out, k, c);
      }
      return out ?? (src as PlainObject);
    }
    default:
      throw new TypeError(`cannot convert ${typeof x} to a Rego value`);
  }
}

/**
 * Converts a Value to JSON-compatible data for results: sets become sorted arrays, non-string
 * object keys become their JSON text (as OPA does). Big integers stay `bigint`; use
 * `stringifyJSON` to print them exactly. A `NumberText` becomes its exact value as a `bigint`.
 */
export function toJSON(v: Value): JsonInput {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof NumberText) return v.value();
  if (Array.isArray(v)) return v.map(toJSON);
  if (v instanceof RegoSet) return v.values().map(toJSON);
  const out: { [k: string]: JsonInput } = {};
  for (const [k, x] of v instanceof RegoObject ? v.entries() : Object.entries(v)) {
    const key = typeof k === 'string' ? k : stringifyJSON(k);
    if (key === '__proto__') Object.defineProperty(out, key, { value: toJSON(x), enumerable: true, writable: true, configurable: true });
    else out[key] = toJSON(x);
  }
  return out;
}

/** JSON text of a value (compact, keys sorted, sets as sorted arrays, big integers exact). */
export function stringifyJSON(v: Value): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'bigint':
      return formatNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v === null) return 'null';
  if (v instanceof NumberText) return v.text();
  if (Array.isArray(v)) return '[' + v.map(stringifyJSON).join(',') + ']';
  if (v instanceof RegoSet) return '[' + v.values().map(stringifyJSON).join(',') + ']';
  return (
    '{' +
    objectEntries(v)
      .map(([k, x]) => JSON.stringify(typeof k === 'string' ? k : stringifyJSON(k)) + ':' + stringifyJSON(x))
      .join(',') +
    '}'
  );
}

/** Rego term syntax, as OPA prints values in errors and `print`. */
export function formatValue(v: Value): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
    case 'bigint':
      return formatNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (v === null) return 'null';
  if (v instanceof NumberText) return v.text();
  if (Array.isArray(v)) return '[' + v.map(formatValue).join(', ') + ']';
  if (v instanceof RegoSet) return v.size === 0 ? 'set()' : '{' + v.values().map(formatValue).join(', ') + '}';
  return (
    '{' +
    objectEntries(v)
      .map(([k, x]) => formatValue(k) + ': ' + formatValue(x))
      .join(', ') +
    '}'
  );
}
