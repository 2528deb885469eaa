/**
 * Caps on what a decision record keeps of its input (pure), so one request cannot make a record
 * that breaks what reads it: JSON.stringify, fastify's serializer and every recursive walk
 * overflow the stack near 4,000 levels on the main thread (the writer thread's larger stack got
 * 5,000 levels stored, which no reader could then answer). What is cut is replaced by a marker
 * saying what it was, `{"$truncated": {...}}`:
 *
 * - depth: a container nested deeper than MAX_INPUT_DEPTH levels inside `input` becomes
 *   `{"$truncated":{"reason":"depth","limit":64}}`;
 * - size: when the record's JSON exceeds MAX_RECORD_CHARS, the largest parts of the input are cut
 *   first: a string becomes `{"$truncated":{"reason":"size","chars":N,"prefix":"…"}}`, an object or
 *   array keeps the members that fit plus a `$truncated` member (`{"reason":"size","members":N,
 *   "kept":K}`), and a part that cannot be cut finer is replaced whole.
 *
 * Copy-on-write: an input within both caps comes back as the same object, at the cost of one walk
 * bounded by the depth cap.
 */
import { nestedDeeperThan } from '../lib/json-depth.ts';

/** Nesting levels kept inside a record's `input` (the input object itself is level 1). */
export const MAX_INPUT_DEPTH = 64;
/** Record JSON length (UTF-16 code units, ≈ bytes for ASCII) above which the input is cut. */
export const MAX_RECORD_CHARS = 64 * 1024;
/** Characters of a cut string kept in its marker. */
export const TRUNCATED_PREFIX_CHARS = 256;
export const TRUNCATED_KEY = '$truncated';
/** A part this small is not worth replacing by a marker (which is about as long). */
const MIN_CUTTABLE_CHARS = 64;

export type TruncatedMarker = { $truncated: Record<string, string | number> };

const depthMarker = (): TruncatedMarker => ({ $truncated: { reason: 'depth', limit: MAX_INPUT_DEPTH } });

type Json = unknown;

function cutDepth(value: Json, levels: number): Json {
  if (value === null || typeof value !== 'object') return value;
  if (levels <= 0) return depthMarker();
  if (Array.isArray(value)) return value.map((v) => cutDepth(v, levels - 1));
  const out: Record<string, Json> = {};
  for (const key of Object.keys(value)) defineMember(out, key, cutDepth((value as Record<string, Json>)[key], levels - 1));
  return out;
}

/** Own data property even for `__proto__` (plain assignment would set the prototype). */
function defineMember(obj: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `value` with every container nested deeper than `levels` replaced by a depth marker; the same value when none is. */
export function capDepth(value: Json, levels: number = MAX_INPUT_DEPTH): Json {
  return nestedDeeperThan(value, levels) ? cutDepth(value, levels) : value;
}

/**
 * JSON length of a value, containers summed from their members and remembered, so cutting a
 * large input serializes it about once instead of once per level. 0 for what JSON.stringify
 * leaves out of an object.
 */
class JsonLengths {
  #known = new Map<object, number>();

  of(value: Json): number {
    if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(value)?.length ?? 0;
    let length = this.#known.get(value);
    if (length !== undefined) return length;
    length = 2;
    if (Array.isArray(value)) {
      for (const v of value) length += (this.of(v) || 4) + 1; // `null` for what an array cannot hold
      if (value.length > 0) length--;
    } else {
      let members = 0;
      for (const key of Object.keys(value)) {
        const v = this.of((value as Record<string, Json>)[key]);
        if (v === 0) continue;
        length += JSON.stringify(key).length + 1 + v;
        members++;
      }
      if (members > 1) length += members - 1;
    }
    this.#known.set(value, length);
    return length;
  }
}

function stringMarker(s: string): TruncatedMarker {
  let prefix = s.slice(0, TRUNCATED_PREFIX_CHARS);
  // Never end on half a surrogate pair.
  const last = prefix.charCodeAt(prefix.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) prefix = prefix.slice(0, -1);
  return { $truncated: { reason: 'size', chars: s.length, prefix } };
}

function sizeMarker(value: Json, chars: number): TruncatedMarker {
  return typeof value === 'string' ? stringMarker(value) : { $truncated: { reason: 'size', chars } };
}

/**
 * `value` cut to serialize in about `budget` characters: the largest members are shrunk first
 * (recursively), then a container keeps the members that fit. Rare path (records over the cap);
 * `value` is already within the depth cap, so the recursion is bounded.
 */
export function shrinkTo(value: Json, budget: number, lengths: JsonLengths = new JsonLengths()): Json {
  const length = lengths.of(value);
  if (length <= budget) return value;
  if (value === null || typeof value !== 'object') return sizeMarker(value, length);
  const isArray = Array.isArray(value);
  // Keys then lookups: Object.entries costs several times more on a 100,000-member object.
  const keys = isArray ? value.map((_, i) => String(i)) : Object.keys(value);
  const next: Json[] = isArray ? [...value] : keys.map((k) => (value as Record<string, Json>)[k]);
  const sizes = next.map((v) => lengths.of(v));
  let excess = length - budget;
  // Largest first: one large body or header usually explains the whole excess.
  const order: number[] = [];
  for (let i = 0; i < sizes.length; i++) if (sizes[i]! >= MIN_CUTTABLE_CHARS) order.push(i);
  order.sort((a, b) => sizes[b]! - sizes[a]!);
  for (const i of order) {
    if (excess <= 0) break;
    const shrunk = shrinkTo(next[i], Math.max(0, sizes[i]! - excess), lengths);
    const saved = sizes[i]! - lengths.of(shrunk);
    if (saved <= 0) continue;
    next[i] = shrunk;
    sizes[i] = sizes[i]! - saved;
    excess -= saved;
  }
  if (excess > 0) return keepWhatFits(keys, next, sizes, isArray, budget);
  if (isArray) return next;
  const out: Record<string, Json> = {};
  keys.forEach((k, i) => defineMember(out, k, next[i]));
  return out;
}

/** The leading members that fit in `budget`, plus a marker saying how many there were. */
function keepWhatFits(keys: string[], values: Json[], sizes: number[], isArray: boolean, budget: number): Json {
  const marker = (kept: number) => ({ reason: 'size', members: keys.length, kept });
  let used = (JSON.stringify({ [TRUNCATED_KEY]: marker(keys.length) })?.length ?? 0) + 2;
  let kept = 0;
  for (; kept < keys.length; kept++) {
    // Key, quotes, colon and comma: a few characters over the value itself.
    const cost = sizes[kept]! + keys[kept]!.length + 4;
    if (used + cost > budget) break;
    used += cost;
  }
  if (isArray) return [...values.slice(0, kept), { [TRUNCATED_KEY]: marker(kept) }];
  const out: Record<string, Json> = {};
  for (let i = 0; i < kept; i++) defineMember(out, keys[i]!, values[i]);
  defineMember(out, TRUNCATED_KEY, marker(kept));
  return out;
}
