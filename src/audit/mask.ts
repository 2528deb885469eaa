/**
 * Masking of decision records before they reach the store (pure). Always: credential headers
 * (`authorization`, `proxy-authorization`, `cookie`, `set-cookie`) wherever they appear in the
 * input, and JWT-looking strings anywhere (query parameters, paths, bodies). Then the configured
 * `Mesh.spec.audit.maskPaths` JSON pointers are removed. Like the OPA decision log's `erased` /
 * `masked` lists, every change is listed as a JSON pointer so auditors know what was hidden.
 *
 * Copy-on-write: only the objects along a masked path are copied; the caller's record is never
 * mutated.
 */
import type { DecisionRecordV1 } from './record.ts';
import { capDepth, MAX_RECORD_CHARS, shrinkTo } from './record-cap.ts';

export const REDACTED = '[REDACTED]';
export const REDACTED_JWT = '[REDACTED-JWT]';

/** Header names (lowercase) whose values are credentials. */
export const CREDENTIAL_KEYS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);

/** Three base64url segments, the first starting like a JSON object (`{"` ⇒ `eyJ`). */
const JWT_RE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

export interface MaskResult {
  record: DecisionRecordV1;
  /** JSON pointers (into the record) of what was redacted or removed, sorted. */
  masked: string[];
}

/** A masked record and its JSON text (`body`, without the `masked` list). */
export interface SerializedMaskResult extends MaskResult {
  json: string;
}

/** Compiled masking rules: build once per configuration, apply per record. */
export interface Masker {
  /** Reference implementation: walks the whole record. */
  mask(record: DecisionRecordV1): MaskResult;
  /**
   * Same result, serialized, at a fraction of the cost for ordinary records: redacts the request
   * headers directly, serializes, and checks the JSON text for any other credential key or JWT;
   * only then does it fall back to the full walk. Both apply the record caps (record-cap.ts):
   * depth before masking, size on the result; `reservedChars` is what the caller adds to the JSON
   * (the writer thread's rest of the record).
   */
  maskAndSerialize(record: DecisionRecordV1, reservedChars?: number): SerializedMaskResult;
}

/** `"<credential key>":` in any letter case. */
const CREDENTIAL_KEY_IN_JSON = new RegExp([...CREDENTIAL_KEYS].map((k) => `"${k}":`).join('|'), 'gi');
const REDACTED_IN_LOWER_JSON = `"${REDACTED.toLowerCase()}"`;

/**
 * Whether JSON text holds a credential key (any letter case) whose value is not already
 * redacted. In JSON.stringify output a key is always `"name":` with unescaped quotes, which never
 * occurs inside a string value (there the quotes are escaped); a value compared case-insensitively
 * can only add false positives (which take the full walk). One case-insensitive regex over the
 * text costs ≈ 1 µs per 1.4 KB record, a third of lowercasing a copy and searching it per key.
 */
function hasUnredactedCredential(json: string): boolean {
  const re = CREDENTIAL_KEY_IN_JSON;
  re.lastIndex = 0;
  while (re.exec(json) !== null) {
    const valueAt = re.lastIndex;
    if (json.slice(valueAt, valueAt + REDACTED_IN_LOWER_JSON.length).toLowerCase() !== REDACTED_IN_LOWER_JSON) {
      re.lastIndex = 0;
      return true;
    }
  }
  return false;
}

const JWT_IN_TEXT = new RegExp(JWT_RE.source);

/**
 * A header-map entry (`{"key":"authorization","value"|"rawValue":...}`, what Envoy sends with
 * `encode_raw_headers`): the name is a value here, so the key test above cannot see it.
 */
const CREDENTIAL_ENTRY_IN_JSON = new RegExp(`"key":"(?:${[...CREDENTIAL_KEYS].join('|')})"`, 'i');

/** Fields of a header-map entry that hold the header's value. */
const ENTRY_VALUE_KEYS: ReadonlySet<string> = new Set(['value', 'rawValue', 'raw_value']);

/** Splits an RFC 6901 JSON pointer into unescaped tokens. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`JSON pointer "${pointer}" must start with "/"`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function escapeToken(token: string): string {
  return token.includes('~') || token.includes('/') ? token.replace(/~/g, '~0').replace(/\//g, '~1') : token;
}

function maskString(value: string): string {
  // `includes` first: almost no string holds a JWT, and the check is far cheaper than the regex.
  return value.includes('eyJ') ? value.replace(JWT_RE, REDACTED_JWT) : value;
}

type Json = unknown;

/**
 * Redacts credentials and JWTs under `value`; returns the same object when nothing changed.
 * `path` is the stack of keys to here; a pointer string is only built for what gets masked
 * (building one per visited node was most of the cost).
 */
function maskTree(value: Json, path: string[], masked: string[]): Json {
  if (typeof value === 'string') {
    const out = maskString(value);
    if (out !== value) masked.push(toPointer(path));
    return out;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let copy: Json[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const child = value[i];
      if (child === null || (typeof child !== 'object' && typeof child !== 'string')) continue;
      path.push(String(i));
      const next = maskTree(child, path, masked);
      path.pop();
      if (next !== child) (copy ??= [...value])[i] = next;
    }
    return copy ?? value;
  }
  let copy: Record<string, Json> | undefined;
  const obj = value as Record<string, Json>;
  const credentialEntry = typeof obj.key === 'string' && isCredentialKey(obj.key);
  for (const key in obj) {
    const child = obj[key];
    if (child === null || (typeof child !== 'object' && typeof child !== 'string')) continue;
    path.push(key);
    let next: Json;
    if (isCredentialKey(key) || (credentialEntry && ENTRY_VALUE_KEYS.has(key))) {
      next = REDACTED;
      masked.push(toPointer(path));
    } else {
      next = maskTree(child, path, masked);
    }
    path.pop();
    if (next !== child) (copy ??= { ...obj })[key] = next;
  }
  return copy ?? value;
}

/** Lowercase fast path first: HTTP/2 and Envoy deliver header names lowercased. */
function isCredentialKey(key: string): boolean {
  return CREDENTIAL_KEYS.has(key) || (key.length >= 6 && key.length <= 19 && CREDENTIAL_KEYS.has(key.toLowerCase()));
}

function toPointer(path: readonly string[]): string {
  let out = '';
  for (const t of path) out += `/${escapeToken(t)}`;
  return out;
}

/** Removes the value at `tokens` (copy-on-write); returns the same object when absent. */
function removeAt(value: Json, tokens: readonly string[], depth: number): Json {
  if (value === null || typeof value !== 'object') return value;
  const token = tokens[depth]!;
  const last = depth === tokens.length - 1;
  if (Array.isArray(value)) {
    const i = Number(token);
    if (!Number.isInteger(i) || i < 0 || i >= value.length) return value;
    if (last) return value.filter((_, j) => j !== i);
    const next = removeAt(value[i], tokens, depth + 1);
    if (next === value[i]) return value;
    const copy = [...value];
    copy[i] = next;
    return copy;
  }
  const obj = value as Record<string, Json>;
  if (!Object.hasOwn(obj, token)) return value;
  if (last) {
    const { [token]: _removed, ...rest } = obj;
    return rest;
  }
  const next = removeAt(obj[token], tokens, depth + 1);
  return next === obj[token] ? value : { ...obj, [token]: next };
}

/**
 * Builds a masker. `maskPaths` are JSON pointers into the policy input (as OPA-Envoy's
 * `data.system.log.mask`), e.g. `/attributes/request/http/headers/x-api-key`.
 *
 * @example
 * const masker = createMasker(['/parsed_body/password']);
 * const { record, masked } = masker.mask(decision);
 */
export function createMasker(maskPaths: readonly string[] = []): Masker {
  const removals = maskPaths.map((p) => ({ pointer: p, tokens: parsePointer(p) })).filter((r) => r.tokens.length > 0);

  const mask = (original: DecisionRecordV1): MaskResult => {
    const record = withCappedDepth(original);
    const masked: string[] = [];
    let input = record.input === undefined ? undefined : maskTree(record.input, ['input'], masked);
    input = applyRemovals(input, masked);
    const path = record.path === undefined ? undefined : maskString(record.path);
    if (path !== record.path) masked.push('/path');
    if (masked.length === 0) return { record, masked };
    masked.sort();
    const out: DecisionRecordV1 = { ...record, input };
    if (path !== undefined) out.path = path;
    if (input === undefined) delete out.input;
    return { record: out, masked };
  };

  function applyRemovals(input: Json, masked: string[]): Json {
    for (const r of removals) {
      const next = removeAt(input, r.tokens, 0);
      if (next !== input) masked.push(`/input${r.pointer}`);
      input = next;
    }
    return input;
  }

  return {
    mask,
    maskAndSerialize(original, reservedChars = 0) {
      // Before masking: the walks below recurse, and a 100,000-level body would overflow the stack.
      const record = withCappedDepth(original);
      const masked: string[] = [];
      let input = redactRequestHeaders(record.input, masked);
      input = applyRemovals(input, masked);
      const out = input === record.input ? record : { ...record, input };
      const json = JSON.stringify(out);
      // `includes` first: a plain substring search is far cheaper than a case-insensitive regex over the whole text.
      const credentialEntry = json.includes('"key":"') && CREDENTIAL_ENTRY_IN_JSON.test(json);
      if (hasUnredactedCredential(json) || credentialEntry || (json.includes('eyJ') && JWT_IN_TEXT.test(json))) {
        // Secrets elsewhere than the request headers: take the full walk.
        const full = mask(record);
        return capSize({ ...full, json: JSON.stringify(full.record) }, reservedChars);
      }
      masked.sort();
      return capSize({ record: out, masked, json }, reservedChars);
    },
  };
}

/** The record with its input cut at MAX_INPUT_DEPTH; the same record when nothing is that deep. */
function withCappedDepth(record: DecisionRecordV1): DecisionRecordV1 {
  const input = capDepth(record.input);
  return input === record.input ? record : { ...record, input };
}

/** After masking (so kept prefixes are masked): a record over MAX_RECORD_CHARS gets its input cut to fit. */
function capSize(result: SerializedMaskResult, reservedChars: number): SerializedMaskResult {
  const excess = result.json.length + reservedChars - MAX_RECORD_CHARS;
  if (excess <= 0 || result.record.input === undefined) return result;
  const inputChars = JSON.stringify(result.record.input)?.length ?? 0;
  const record = { ...result.record, input: shrinkTo(result.record.input, Math.max(0, inputChars - excess)) };
  return { record, masked: result.masked, json: JSON.stringify(record) };
}

const HEADERS_PATH = ['attributes', 'request', 'http', 'headers'] as const;

/** Redacts credential headers at `/attributes/request/http/headers` (copy-on-write). */
function redactRequestHeaders(input: Json, masked: string[]): Json {
  const chain: Record<string, Json>[] = [];
  let node: Json = input;
  for (const key of HEADERS_PATH) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return input;
    chain.push(node as Record<string, Json>);
    node = (node as Record<string, Json>)[key];
  }
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return input;
  let headers: Record<string, Json> | undefined;
  for (const key in node as Record<string, Json>) {
    const value = (node as Record<string, Json>)[key];
    // As the full walk: strings and objects are redacted, other values are not credentials.
    if (value === null || (typeof value !== 'string' && typeof value !== 'object') || !isCredentialKey(key)) continue;
    (headers ??= { ...(node as Record<string, Json>) })[key] = REDACTED;
    masked.push(`/input/attributes/request/http/headers/${escapeToken(key)}`);
  }
  if (!headers) return input;
  let copy: Json = headers;
  for (let i = chain.length - 1; i >= 0; i--) copy = { ...chain[i]!, [HEADERS_PATH[i]!]: copy };
  return copy;
}

/**
 * One masker per mask list, rebuilt only when the list changes (with the config). The same array
 * is recognised by identity (the audit log's settings); a list that crossed to the writer thread
 * is a copy, recognised by content.
 */
export class MaskerCache {
  #paths: readonly string[] = [];
  #masker: Masker = createMasker([]);

  get(paths: readonly string[]): Masker {
    if (!sameMaskPaths(paths, this.#paths)) this.#masker = createMasker(paths);
    this.#paths = paths;
    return this.#masker;
  }
}

/** Whether two mask lists are the same list (identity first, then content). */
export function sameMaskPaths(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}
