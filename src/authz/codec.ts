/**
 * Hand-written wire codec for the ext_authz hot path: CheckRequest → the JSON object proto-loader's
 * `requestDeserialize` returns, and buildCheckResponse's object → the bytes `responseSerialize`
 * writes. Check runs on every request of the mesh, and protobufjs' generic path (decode into message
 * instances, then `toObject` into a second object tree; `fromObject` then `encode` with a linked list
 * of write ops) was ~12% of the main thread under load. Measured with bench/codec.bench.ts (CPU
 * time per op, interleaved with proto-loader in the same process, meshward loaded; three runs on the
 * shared 2-core box, absolute numbers vary with its load, ratios do not): the benchmark's real
 * CheckRequest (557 B: ES256 JWT, 3 headers, both peers) decodes in 2.0–3.3 µs instead of
 * 5.1–8.0 µs (2.4–2.6×); a realistic allow response encodes in 2.1–2.8 µs instead of 6.2–7.6 µs
 * (2.6–2.9×), a deny response in 1.3–2.1 µs instead of 4.5–6.8 µs (3.2–3.3×).
 *
 * Equivalence is by test (test/authz/codec.test.ts), not by argument: thousands of seeded random
 * CheckRequests (every field of every specialised message, unicode / lone surrogates / invalid
 * UTF-8, explicit defaults, 64-bit sizes, `__proto__` map keys, unknown fields, repeated and
 * out-of-order fields) must decode deep-equal (same own keys, same key order) to `requestDeserialize`,
 * random mutations of them must throw whenever protobufjs throws, and every decision outcome must
 * encode byte-identically to `responseSerialize`. The test also pins the field lists of the loaded
 * protos, so an Envoy API upgrade that adds a field fails it instead of silently dropping the field.
 *
 * What protobufjs does (7.x generated code, loader options keepCase false, longs/enums/bytes String,
 * defaults false, oneofs false, json true), and so what this does:
 * - a field is an own property iff it was on the wire, even with its default value ("" / 0 / false);
 *   maps and repeated fields only when non-empty; sub-messages on the wire are objects, even empty;
 * - a message field seen twice is replaced by the last one (not merged); map entries accumulate,
 *   a missing key or value is ""; a `__proto__` key is an own property;
 * - int64 → signed decimal string; enums → name, or the number when unknown; bytes → base64;
 *   strings → `Buffer#utf8Slice` (invalid UTF-8 becomes U+FFFD);
 * - both members of a oneof on the wire are both kept; unknown fields (and groups) are skipped;
 * - keys come out in field-number order (the order `toObject` writes them);
 * - metadata_context / route_metadata_context (Struct, Any → "@type" objects) are decoded by the
 *   protobufjs Type of an identically loaded root at the same nesting depth, so they are equal by
 *   construction.
 * Where protobufjs silently misreads malformed input, this throws instead (always an Error naming
 * what is wrong and the byte offset): a string longer than its enclosing message (protobufjs
 * truncates it), a known field with the wrong wire type (protobufjs reinterprets the bytes), a
 * 6–9 byte varint in a 32-bit field (protobufjs swallows the following bytes), a 64-bit varint cut
 * by the end of its message (protobufjs keeps the partial value). Everything protobufjs rejects is
 * rejected too.
 *
 * Encoding writes fields in field-number order like protobufjs (and, like it, writes any field
 * present in the object, default values included; both oneof members if both are set). Strings go
 * through `utf8Write`, except a string under 40 UTF-16 units with a lone surrogate, which protobufjs'
 * own writer turns into 3-byte WTF-8 rather than U+FFFD. Anything outside buildCheckResponse's
 * shapes (non-plain objects, `details`, `rawValue`, enum names, non-string strings, non-integer
 * codes, Structs nested deeper than 32, ...) goes to `responseSerialize`, so it stays exact.
 */
import { createRequire } from 'node:module';
import type { Reader as ProtobufReader, Type as ProtobufType } from 'protobufjs';
import type { AddressJson, AttributeContextJson, CheckRequestJson, HttpRequestJson, PeerJson } from './input.ts';
import { authorizationServiceDefinition } from './proto.ts';
import { ENVOY_INCLUDE_DIRS } from '../lib/protos.ts';

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

/** The message being decoded and the read position (decoding is synchronous and not re-entrant). */
const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let pos = 0;

/** protobufjs' `util.recursionLimit` (protoc's default): nesting depth at which it refuses input. */
const RECURSION_LIMIT = 100;

interface NativeSlices { utf8Slice(start: number, end: number): string; base64Slice(start: number, end: number): string }

function fail(what: string): never {
  throw new Error(`malformed CheckRequest: ${what} at byte ${pos}`);
}

/** Field numbers (all < 32) each specialised message knows, as bit masks (bit n = field n). */
const KNOWN_CHECK_REQUEST = 0b10;
const KNOWN_ATTRIBUTE_CONTEXT = 0b11110000010110;
const KNOWN_PEER = 0b111110;
const KNOWN_ADDRESS = 0b1110;
const KNOWN_SOCKET_ADDRESS = 0b1111110;
const KNOWN_TWO_FIELDS = 0b110;
const KNOWN_HTTP_REQUEST = 0b11111111111110;
const KNOWN_ONE_FIELD = 0b10;
const KNOWN_HEADER_VALUE = 0b1110;

/** A varint read as protobufjs' `uint32()`: low 32 bits, up to 10 bytes (negative int32s). */
function varint32(end: number): number {
  const b = buf;
  let p = pos;
  if (p >= end) fail('truncated varint');
  let byte = b[p++]!;
  if (byte < 0x80) {
    pos = p;
    return byte;
  }
  let value = byte & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    if (p >= end) return failAt(p, 'truncated varint');
    byte = b[p++]!;
    value |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      pos = p;
      return value >>> 0;
    }
  }
  if (p >= end) return failAt(p, 'truncated varint');
  byte = b[p++]!;
  pos = p;
  value = (value | ((byte & 0x0f) << 28)) >>> 0;
  if (byte < 0x80) return value;
  return varint32Tail(end, value);
}

function failAt(at: number, what: string): never {
  pos = at;
  return fail(what);
}

/** Bytes 6–10 of a 32-bit varint: only the 10-byte form (a sign-extended int32) is accepted. */
function varint32Tail(end: number, value: number): number {
  for (let i = 6; i <= 10; i++) {
    if (pos >= end) fail('truncated varint');
    if (buf[pos++]! < 0x80) {
      if (i < 10) fail(`${i}-byte varint in a 32-bit field`);
      return value;
    }
  }
  return fail('varint longer than 10 bytes');
}

/** An int64 varint as the signed decimal string `Long#toString` gives. */
function int64String(end: number): string {
  let lo = 0;
  let hi = 0;
  let b = 0x80;
  let i = 0;
  for (; i < 4 && b >= 0x80; i++) {
    if (pos >= end) fail('truncated varint');
    b = buf[pos++]!;
    lo |= (b & 0x7f) << (7 * i);
  }
  if (b >= 0x80) {
    if (pos >= end) fail('truncated varint');
    b = buf[pos++]!;
    lo |= (b & 0x7f) << 28;
    hi = (b & 0x7f) >> 4;
    for (i = 0; i < 5 && b >= 0x80; i++) {
      if (pos >= end) fail('truncated varint');
      b = buf[pos++]!;
      hi |= (b & 0x7f) << (7 * i + 3);
    }
    if (b >= 0x80) fail('varint longer than 10 bytes');
  }
  return longString(lo >>> 0, hi >>> 0);
}

function longString(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  if (hi < 0x200000) return String(hi * 4294967296 + lo);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** Reads a length prefix; returns the end of the delimited bytes. */
function delimited(end: number): number {
  const length = varint32(end);
  if (length > end - pos) fail(`length ${length} past the end of its message`);
  return pos + length;
}

function string(end: number): string {
  const stop = delimited(end);
  const start = pos;
  pos = stop;
  return utf8(start, stop);
}

/**
 * `BufferReader#string`: the native UTF-8 slicer (invalid sequences become U+FFFD). Short ASCII
 * strings (header names, methods, addresses) are built in JS instead: the call into C++ costs more
 * than the copy.
 */
function utf8(start: number, stop: number): string {
  const b = buf;
  if (stop - start > SHORT_STRING) return (b as unknown as NativeSlices).utf8Slice(start, stop);
  let s = '';
  let i = start;
  for (; i + 4 <= stop; i += 4) {
    const c0 = b[i]!;
    const c1 = b[i + 1]!;
    const c2 = b[i + 2]!;
    const c3 = b[i + 3]!;
    if ((c0 | c1 | c2 | c3) >= 0x80) return (b as unknown as NativeSlices).utf8Slice(start, stop);
    s += String.fromCharCode(c0, c1, c2, c3);
  }
  for (; i < stop; i++) {
    const c = b[i]!;
    if (c >= 0x80) return (b as unknown as NativeSlices).utf8Slice(start, stop);
    s += String.fromCharCode(c);
  }
  return s;
}

const SHORT_STRING = 12;

function base64(end: number): string {
  const stop = delimited(end);
  const start = pos;
  pos = stop;
  return (buf as unknown as NativeSlices).base64Slice(start, stop);
}

/** A field this decoder does not read: skipped like `Reader#skipType` (groups nest up to the limit). */
function skip(tag: number, known: number, end: number, depth: number): void {
  const field = tag >>> 3;
  if (field < 32 && ((known >>> field) & 1) === 1) fail(`field ${field} with unexpected wire type ${tag & 7}`);
  skipValue(tag & 7, end, depth);
}

function skipValue(wireType: number, end: number, depth: number): void {
  if (depth > RECURSION_LIMIT) fail('maximum nesting depth exceeded');
  switch (wireType) {
    case 0:
      do if (pos >= end) fail('truncated varint'); while (buf[pos++]! >= 0x80);
      return;
    case 1: skipBytes(8, end); return;
    case 2: pos = delimited(end); return;
    case 3:
      for (let t = varint32(end) & 7; t !== 4; t = varint32(end) & 7) skipValue(t, end, depth + 1);
      return;
    case 5: skipBytes(4, end); return;
    default: fail(`invalid wire type ${wireType}`);
  }
}

function skipBytes(n: number, end: number): void {
  if (end - pos < n) fail('truncated fixed-size field');
  pos += n;
}

/**
 * Map keys (header names above all) come from a small vocabulary: a bounded cache of recent ASCII
 * keys hands back the same (already internalised) string, which both skips the allocation and
 * makes `map[key] = value` cheaper.
 */
const KEY_CACHE_SIZE = 512;
const KEY_MAX = 32;
const keyStrings: string[] = new Array<string>(KEY_CACHE_SIZE).fill('');
/** The bytes of each cached key (compared as bytes: `charCodeAt` is slow in meshward, see writeString). */
const keyBytes = new Uint8Array(KEY_CACHE_SIZE * KEY_MAX);

function mapKey(end: number): string {
  const stop = delimited(end);
  const start = pos;
  pos = stop;
  const n = stop - start;
  if (n > KEY_MAX || n === 0) return utf8(start, stop);
  const b = buf;
  let h = n;
  for (let i = start; i < stop; i++) {
    const c = b[i]!;
    if (c >= 0x80) return utf8(start, stop);
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = (h ^ (h >>> 16)) & (KEY_CACHE_SIZE - 1);
  const cached = keyStrings[slot]!;
  const at = slot * KEY_MAX;
  if (cached.length === n) {
    let i = 0;
    while (i < n && keyBytes[at + i] === b[start + i]) i++;
    if (i === n) return cached;
  }
  const key = utf8(start, stop);
  keyStrings[slot] = key;
  for (let i = 0; i < n; i++) keyBytes[at + i] = b[start + i]!;
  return key;
}

/** Sets `map[key] = value` the way protobufjs does, `__proto__` included (as an own property). */
function setEntry(map: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') Object.defineProperty(map, key, { value, enumerable: true, configurable: true, writable: true });
  else map[key] = value;
}

/** One `map<string, string>` entry into `map` (created when undefined); returns the map. */
function mapEntry(map: Record<string, string> | undefined, end: number, depth: number): Record<string, string> {
  const stop = delimited(end);
  let key = '';
  let value = '';
  while (pos < stop) {
    const tag = varint32(stop);
    if (tag === 0x0a) key = mapKey(stop);
    else if (tag === 0x12) value = string(stop);
    else skip(tag, KNOWN_TWO_FIELDS, stop, depth);
  }
  const target = map ?? {};
  setEntry(target, key, value);
  return target;
}

/**
 * Request header limits, checked while decoding (`headers` entries and `header_map` values count
 * alike): headers past either limit are skipped, not decoded, so a request with 100,000 headers
 * costs the event loop a scan of its bytes, not a map of them. Such a request is denied with 431
 * (see headerOverflow). Envoy's own default `max_headers_count` is 100.
 */
export const MAX_REQUEST_HEADERS = 1000;
export const MAX_REQUEST_HEADER_BYTES = 256 * 1024;

/** What a request over the header limits carried (all of it, counted while skipping). */
export interface HeaderOverflow {
  count: number;
  bytes: number;
}

let headerCount = 0;
let headerBytes = 0;
const overflows = new WeakMap<CheckRequestJson, HeaderOverflow>();

/** The header totals of a decoded request whose headers exceeded the limits (the decoded request holds those within them). */
export function headerOverflow(request: CheckRequestJson): HeaderOverflow | undefined {
  return overflows.get(request);
}

/** Counts the header entry at `pos` (delimited); false when it is over the limits (then skipped). */
function admitHeader(end: number): boolean {
  const start = pos;
  const stop = delimited(end);
  headerCount++;
  headerBytes += stop - start;
  if (headerCount <= MAX_REQUEST_HEADERS && headerBytes <= MAX_REQUEST_HEADER_BYTES) {
    pos = start;
    return true;
  }
  pos = stop;
  return false;
}

/** `CheckRequest` bytes → exactly what proto-loader's `requestDeserialize` returns. */
export function decodeCheckRequest(message: Buffer): CheckRequestJson {
  buf = message;
  pos = 0;
  headerCount = 0;
  headerBytes = 0;
  const end = message.length;
  let attributes: AttributeContextJson | undefined;
  try {
    while (pos < end) {
      const tag = varint32(end);
      if (tag === 0x0a) attributes = attributeContext(delimited(end), 1);
      else skip(tag, KNOWN_CHECK_REQUEST, end, 0);
    }
  } finally {
    buf = EMPTY;
  }
  const request: CheckRequestJson = attributes === undefined ? {} : { attributes };
  if (headerCount > MAX_REQUEST_HEADERS || headerBytes > MAX_REQUEST_HEADER_BYTES) overflows.set(request, { count: headerCount, bytes: headerBytes });
  return request;
}

function attributeContext(end: number, depth: number): AttributeContextJson {
  let source: PeerJson | undefined;
  let destination: PeerJson | undefined;
  let request: Json | undefined;
  let contextExtensions: Record<string, string> | undefined;
  let metadataContext: unknown;
  let tlsSession: Json | undefined;
  let routeMetadataContext: unknown;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case 0x0a: source = peer(delimited(end), depth + 1); break;
      case 0x12: destination = peer(delimited(end), depth + 1); break;
      case 0x22: request = requestAttributes(delimited(end), depth + 1); break;
      case 0x52: contextExtensions = mapEntry(contextExtensions, end, depth); break;
      case 0x5a: metadataContext = foreignMessage('envoy.config.core.v3.Metadata', end, depth + 1); break;
      case 0x62: tlsSession = tls(delimited(end), depth + 1); break;
      case 0x6a: routeMetadataContext = foreignMessage('envoy.config.core.v3.Metadata', end, depth + 1); break;
      default: skip(tag, KNOWN_ATTRIBUTE_CONTEXT, end, depth);
    }
  }
  const out: AttributeContextJson = {};
  if (source !== undefined) out.source = source;
  if (destination !== undefined) out.destination = destination;
  if (request !== undefined) out.request = request;
  if (contextExtensions !== undefined) out.contextExtensions = contextExtensions;
  if (metadataContext !== undefined) out.metadataContext = metadataContext;
  if (tlsSession !== undefined) out.tlsSession = tlsSession;
  if (routeMetadataContext !== undefined) out.routeMetadataContext = routeMetadataContext;
  return out;
}

function peer(end: number, depth: number): PeerJson {
  let address: AddressJson | undefined;
  let service: string | undefined;
  let labels: Record<string, string> | undefined;
  let principal: string | undefined;
  let certificate: string | undefined;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case 0x0a: address = addressOf(delimited(end), depth + 1); break;
      case 0x12: service = string(end); break;
      case 0x1a: labels = mapEntry(labels, end, depth); break;
      case 0x22: principal = string(end); break;
      case 0x2a: certificate = string(end); break;
      default: skip(tag, KNOWN_PEER, end, depth);
    }
  }
  const out: PeerJson = {};
  if (address !== undefined) out.address = address;
  if (service !== undefined) out.service = service;
  if (labels !== undefined) out.labels = labels;
  if (principal !== undefined) out.principal = principal;
  if (certificate !== undefined) out.certificate = certificate;
  return out;
}

function addressOf(end: number, depth: number): AddressJson {
  let socketAddress: Json | undefined;
  let pipe: Json | undefined;
  let internal: Json | undefined;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case 0x0a: socketAddress = socket(delimited(end), depth + 1); break;
      case 0x12: pipe = pipeOf(delimited(end), depth + 1); break;
      case 0x1a: internal = internalAddress(delimited(end), depth + 1); break;
      default: skip(tag, KNOWN_ADDRESS, end, depth);
    }
  }
  const out: Json = {};
  if (socketAddress !== undefined) out.socketAddress = socketAddress;
  if (pipe !== undefined) out.pipe = pipe;
  if (internal !== undefined) out.envoyInternalAddress = internal;
  return out as AddressJson;
}

const SOCKET_PROTOCOLS: readonly string[] = ['TCP', 'UDP'];

function socket(end: number, depth: number): Json {
  let protocol: string | number | undefined;
  let address: string | undefined;
  let portValue: number | undefined;
  let namedPort: string | undefined;
  let resolverName: string | undefined;
  let ipv4Compat: boolean | undefined;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case 0x08: {
        const n = varint32(end) | 0;
        protocol = SOCKET_PROTOCOLS[n] ?? n;
        break;
      }
      case 0x12: address = string(end); break;
      case 0x18: portValue = varint32(end); break;
      case 0x22: namedPort = string(end); break;
      case 0x2a: resolverName = string(end); break;
      case 0x30: ipv4Compat = varint32(end) !== 0; break;
      default: skip(tag, KNOWN_SOCKET_ADDRESS, end, depth);
    }
  }
  const out: Json = {};
  if (protocol !== undefined) out.protocol = protocol;
  if (address !== undefined) out.address = address;
  if (portValue !== undefined) out.portValue = portValue;
  if (namedPort !== undefined) out.namedPort = namedPort;
  if (resolverName !== undefined) out.resolverName = resolverName;
  if (ipv4Compat !== undefined) out.ipv4Compat = ipv4Compat;
  return out;
}

function pipeOf(end: number, depth: number): Json {
  let path: string | undefined;
  let mode: number | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) path = string(end);
    else if (tag === 0x10) mode = varint32(end);
    else skip(tag, KNOWN_TWO_FIELDS, end, depth);
  }
  const out: Json = {};
  if (path !== undefined) out.path = path;
  if (mode !== undefined) out.mode = mode;
  return out;
}

function internalAddress(end: number, depth: number): Json {
  let serverListenerName: string | undefined;
  let endpointId: string | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) serverListenerName = string(end);
    else if (tag === 0x12) endpointId = string(end);
    else skip(tag, KNOWN_TWO_FIELDS, end, depth);
  }
  const out: Json = {};
  if (serverListenerName !== undefined) out.serverListenerName = serverListenerName;
  if (endpointId !== undefined) out.endpointId = endpointId;
  return out;
}

function requestAttributes(end: number, depth: number): Json {
  let time: Json | undefined;
  let http: HttpRequestJson | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) time = timestamp(delimited(end), depth + 1);
    else if (tag === 0x12) http = httpRequest(delimited(end), depth + 1);
    else skip(tag, KNOWN_TWO_FIELDS, end, depth);
  }
  const out: Json = {};
  if (time !== undefined) out.time = time;
  if (http !== undefined) out.http = http;
  return out;
}

function timestamp(end: number, depth: number): Json {
  let seconds: string | undefined;
  let nanos: number | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x08) seconds = int64String(end);
    else if (tag === 0x10) nanos = varint32(end) | 0;
    else skip(tag, KNOWN_TWO_FIELDS, end, depth);
  }
  const out: Json = {};
  if (seconds !== undefined) out.seconds = seconds;
  if (nanos !== undefined) out.nanos = nanos;
  return out;
}

function httpRequest(end: number, depth: number): HttpRequestJson {
  let id: string | undefined;
  let method: string | undefined;
  let headers: Record<string, string> | undefined;
  let path: string | undefined;
  let host: string | undefined;
  let scheme: string | undefined;
  let query: string | undefined;
  let fragment: string | undefined;
  let size: string | undefined;
  let protocol: string | undefined;
  let body: string | undefined;
  let rawBody: string | undefined;
  let headerMapValue: Json | undefined;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case 0x0a: id = string(end); break;
      case 0x12: method = string(end); break;
      case 0x1a: if (admitHeader(end)) headers = mapEntry(headers, end, depth); break;
      case 0x22: path = string(end); break;
      case 0x2a: host = string(end); break;
      case 0x32: scheme = string(end); break;
      case 0x3a: query = string(end); break;
      case 0x42: fragment = string(end); break;
      case 0x48: size = int64String(end); break;
      case 0x52: protocol = string(end); break;
      case 0x5a: body = string(end); break;
      case 0x62: rawBody = base64(end); break;
      case 0x6a: headerMapValue = headerMap(delimited(end), depth + 1); break;
      default: skip(tag, KNOWN_HTTP_REQUEST, end, depth);
    }
  }
  const out: HttpRequestJson = {};
  if (id !== undefined) out.id = id;
  if (method !== undefined) out.method = method;
  if (headers !== undefined) out.headers = headers;
  if (path !== undefined) out.path = path;
  if (host !== undefined) out.host = host;
  if (scheme !== undefined) out.scheme = scheme;
  if (query !== undefined) out.query = query;
  if (fragment !== undefined) out.fragment = fragment;
  if (size !== undefined) out.size = size;
  if (protocol !== undefined) out.protocol = protocol;
  if (body !== undefined) out.body = body;
  if (rawBody !== undefined) out.rawBody = rawBody;
  if (headerMapValue !== undefined) out.headerMap = headerMapValue;
  return out;
}

function headerMap(end: number, depth: number): Json {
  let headers: Json[] | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) {
      if (admitHeader(end)) (headers ??= []).push(headerValue(delimited(end), depth + 1));
    } else skip(tag, KNOWN_ONE_FIELD, end, depth);
  }
  return headers === undefined ? {} : { headers };
}

function headerValue(end: number, depth: number): Json {
  let key: string | undefined;
  let value: string | undefined;
  let rawValue: string | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) key = string(end);
    else if (tag === 0x12) value = string(end);
    else if (tag === 0x1a) rawValue = base64(end);
    else skip(tag, KNOWN_HEADER_VALUE, end, depth);
  }
  const out: Json = {};
  if (key !== undefined) out.key = key;
  if (value !== undefined) out.value = value;
  if (rawValue !== undefined) out.rawValue = rawValue;
  return out;
}

function tls(end: number, depth: number): Json {
  let sni: string | undefined;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === 0x0a) sni = string(end);
    else skip(tag, KNOWN_ONE_FIELD, end, depth);
  }
  return sni === undefined ? {} : { sni };
}

// --- messages left to protobufjs -------------------------------------------------------------

/** The options proto.ts loads the Check service with (only the conversion ones matter here). */
const LOAD_OPTIONS = { keepCase: false, longs: String, enums: String, bytes: String, defaults: false, oneofs: false, json: true, includeDirs: ENVOY_INCLUDE_DIRS };

interface Foreign { root: { lookupType(name: string): ProtobufType }; createReader(b: Buffer): ProtobufReader }
let foreign: Foreign | undefined;

/** external_auth.proto loaded exactly as proto-loader loads it for proto.ts (same files, so Any resolves the same types). */
function loadForeign(): Foreign {
  if (!foreign) {
    const require = createRequire(import.meta.url);
    require('@grpc/proto-loader'); // registers the common protos proto-loader adds
    const util = require('@grpc/proto-loader/build/src/util.js') as { loadProtosWithOptionsSync(f: string, o: object): Foreign['root'] };
    const protobuf = require('protobufjs') as { Reader: { create(b: Buffer): ProtobufReader } };
    foreign = { root: util.loadProtosWithOptionsSync('envoy/service/auth/v3/external_auth.proto', LOAD_OPTIONS), createReader: (b) => protobuf.Reader.create(b) };
  }
  return foreign;
}

/**
 * Loads what the Struct/Any fallback needs now, so the first request carrying `metadata_context`
 * does not wait ≈ 0.1 s for the proto files to be parsed (the capability calls it at start).
 */
export function warmCodec(): void {
  loadForeign();
}

/** A length-delimited field decoded and converted by protobufjs itself, at the depth it would be. */
function foreignMessage(typeName: string, end: number, depth: number): unknown {
  const length = varint32(end);
  const { root, createReader } = loadForeign();
  const type = root.lookupType(typeName);
  const reader = createReader(buf);
  reader.pos = pos;
  reader.len = end;
  const decode = type.decode as unknown as (r: ProtobufReader, l: number, e: undefined, n: number) => object;
  const toObject = type.toObject as unknown as (m: object, o: object, q: number) => unknown;
  try {
    const message = decode.call(type, reader, length, undefined, depth);
    pos = reader.pos;
    return toObject.call(type, message, LOAD_OPTIONS, depth);
  } catch (err) {
    return fail(`${(err as Error).message} (protobufjs, in ${typeName})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/** Thrown inside the encoder for a shape it does not handle; `encodeCheckResponse` then falls back. */
class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported('shape not handled by the hand-written encoder');

const SCRATCH_SIZE = 16384;
/** A response with a huge body grows the scratch buffer; it is not kept that big. */
const MAX_KEPT_SCRATCH = 1 << 20;
let out: Buffer = Buffer.allocUnsafe(SCRATCH_SIZE);
let w = 0;

/** Deeper Structs than this go to protobufjs (which applies its own recursion limit). */
const MAX_STRUCT_DEPTH = 32;

/** buildCheckResponse's object → exactly the bytes of `responseSerialize(response)`. */
export function encodeCheckResponse(response: Record<string, unknown>): Buffer {
  w = 0;
  try {
    checkResponse(response);
  } catch (err) {
    if (err !== UNSUPPORTED) throw err;
    return authorizationServiceDefinition().Check!.responseSerialize(response);
  }
  const result = Buffer.allocUnsafe(w);
  out.copy(result, 0, 0, w);
  if (out.length > MAX_KEPT_SCRATCH) out = Buffer.allocUnsafe(SCRATCH_SIZE);
  return result;
}

function ensure(n: number): void {
  if (w + n <= out.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, w + n));
  out.copy(bigger, 0, 0, w);
  out = bigger;
}

function writeVarint(value: number): void {
  ensure(5);
  let v = value >>> 0;
  while (v > 0x7f) {
    out[w++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[w++] = v;
}

/** `Writer#int32`: a negative value is written as its 64-bit two's complement (10 bytes). */
function writeInt32(value: number): void {
  if (value >= 0) {
    writeVarint(value);
    return;
  }
  ensure(10);
  let lo = value >>> 0;
  let hi = 0xffffffff;
  while (hi !== 0) {
    out[w++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    out[w++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  out[w++] = lo;
}

/** Reserves one length byte; `endDelimited` fills it (moving the body when the length needs more). */
function beginDelimited(tag: number): number {
  ensure(2);
  out[w++] = tag;
  return w++;
}

function endDelimited(at: number): void {
  const length = w - at - 1;
  if (length < 0x80) {
    out[at] = length;
    return;
  }
  const size = varintSize(length);
  ensure(size - 1);
  out.copyWithin(at + size, at + 1, w);
  w += size - 1;
  let v = length;
  for (let i = at; v > 0x7f; i++, v >>>= 7) out[i] = (v & 0x7f) | 0x80;
  out[at + size - 1] = v;
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * `BufferWriter#string`. protobufjs writes strings under 40 UTF-16 units with its own UTF-8 writer
 * and longer ones with `utf8Write`; the two differ only for lone surrogates (3-byte WTF-8 vs U+FFFD),
 * so `utf8Write` does all the work here and only a short string with a lone surrogate is rewritten
 * the protobufjs way. (No `charCodeAt` loop on the common path: once any `class extends String`
 * exists in the process, as ioredis' VerbatimString does in meshward, V8 stops inlining
 * `charCodeAt` and such a loop gets ~6x slower.)
 */
function writeString(tag: number, s: unknown): void {
  if (typeof s !== 'string') throw UNSUPPORTED;
  const n = s.length;
  ensure(n * 3 + 6);
  out[w++] = tag;
  const reserved = n < 43 ? 1 : varintSize(n * 3);
  const at = w;
  const written = (out as unknown as NativeWrites).utf8Write(s, at + reserved);
  if (n < 40 && written !== n && LONE_SURROGATE.test(s)) {
    w = at + 1;
    writeWtf8(s);
    out[at] = w - at - 1;
    return;
  }
  const size = varintSize(written);
  if (size < reserved) out.copyWithin(at + size, at + reserved, at + reserved + written);
  w = at;
  writeVarint(written);
  w += written;
}

interface NativeWrites { utf8Write(s: string, offset: number): number }

/** A UTF-16 surrogate not part of a pair (with the u flag, a pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** protobufjs' `utf8.write`: lone surrogates as 3-byte sequences (WTF-8). */
function writeWtf8(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) out[w++] = c;
    else i = writeNonAscii(s, i, c);
  }
}

/** protobufjs' `utf8.write` for one non-ASCII code unit (or pair); returns the index of the last unit used. */
function writeNonAscii(s: string, i: number, c: number): number {
  if (c < 0x800) {
    out[w++] = (c >> 6) | 0xc0;
    out[w++] = (c & 0x3f) | 0x80;
    return i;
  }
  const next = s.charCodeAt(i + 1);
  if ((c & 0xfc00) === 0xd800 && (next & 0xfc00) === 0xdc00) {
    const cp = 0x10000 + ((c & 0x3ff) << 10) + (next & 0x3ff);
    out[w++] = (cp >> 18) | 0xf0;
    out[w++] = ((cp >> 12) & 0x3f) | 0x80;
    out[w++] = ((cp >> 6) & 0x3f) | 0x80;
    out[w++] = (cp & 0x3f) | 0x80;
    return i + 1;
  }
  out[w++] = (c >> 12) | 0xe0;
  out[w++] = ((c >> 6) & 0x3f) | 0x80;
  out[w++] = (c & 0x3f) | 0x80;
  return i;
}

/** A sub-message value as `fromObject` accepts it; anything but a plain object is left to protobufjs. */
function plain(v: unknown): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw UNSUPPORTED;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) throw UNSUPPORTED;
  return v as Json;
}

/** A repeated field: `fromObject` takes any truthy value there (and throws unless it is an array). */
function list(v: unknown): readonly unknown[] | undefined {
  if (!v) return undefined;
  if (!Array.isArray(v)) throw UNSUPPORTED;
  return v;
}

function checkResponse(r: Json): void {
  plain(r);
  if (r.status != null) status(plain(r.status));
  if (r.deniedResponse != null) deniedResponse(plain(r.deniedResponse));
  if (r.okResponse != null) okResponse(plain(r.okResponse));
  if (r.dynamicMetadata != null) struct(0x22, plain(r.dynamicMetadata), 0);
}

function status(s: Json): void {
  const at = beginDelimited(0x0a);
  if (s.code != null) {
    if (typeof s.code !== 'number') throw UNSUPPORTED;
    writeVarint(0x08);
    writeInt32(s.code | 0);
  }
  if (s.message != null) writeString(0x12, s.message);
  if (s.details) throw UNSUPPORTED;
  endDelimited(at);
}

function deniedResponse(d: Json): void {
  const at = beginDelimited(0x12);
  if (d.status != null) httpStatus(plain(d.status));
  const headers = list(d.headers);
  if (headers) for (const h of headers) headerValueOption(0x12, plain(h));
  if (d.body != null) writeString(0x1a, d.body);
  endDelimited(at);
}

function httpStatus(s: Json): void {
  const at = beginDelimited(0x0a);
  const code = s.code;
  if (typeof code === 'number') {
    if (!Number.isInteger(code) || code < 0 || code > 0x7fffffff) throw UNSUPPORTED;
    writeVarint(0x08);
    writeVarint(code);
  } else if (code != null) throw UNSUPPORTED;
  endDelimited(at);
}

function okResponse(o: Json): void {
  const at = beginDelimited(0x1a);
  const headers = list(o.headers);
  if (headers) for (const h of headers) headerValueOption(0x12, plain(h));
  if (o.dynamicMetadata != null) struct(0x1a, plain(o.dynamicMetadata), 0);
  const toRemove = list(o.headersToRemove);
  if (toRemove) for (const name of toRemove) writeString(0x2a, name);
  const responseHeaders = list(o.responseHeadersToAdd);
  if (responseHeaders) for (const h of responseHeaders) headerValueOption(0x32, plain(h));
  const toSet = list(o.queryParametersToSet);
  if (toSet) for (const p of toSet) queryParameter(plain(p));
  const queryToRemove = list(o.queryParametersToRemove);
  if (queryToRemove) for (const name of queryToRemove) writeString(0x42, name);
  endDelimited(at);
}

const APPEND_ACTIONS: Readonly<Record<string, number>> = { APPEND_IF_EXISTS_OR_ADD: 0, ADD_IF_ABSENT: 1, OVERWRITE_IF_EXISTS_OR_ADD: 2, OVERWRITE_IF_EXISTS: 3 };

function headerValueOption(tag: number, h: Json): void {
  const at = beginDelimited(tag);
  if (h.header != null) headerValueOut(plain(h.header));
  if (h.append != null) boolValue(plain(h.append));
  if (h.appendAction != null) {
    const action = typeof h.appendAction === 'string' ? APPEND_ACTIONS[h.appendAction] : h.appendAction;
    if (typeof action !== 'number' || !Number.isInteger(action) || action < 0 || action > 0x7fffffff) throw UNSUPPORTED;
    writeVarint(0x18);
    writeVarint(action);
  }
  if (h.keepEmptyValue != null) writeBool(0x20, h.keepEmptyValue);
  endDelimited(at);
}

function headerValueOut(h: Json): void {
  const at = beginDelimited(0x0a);
  if (h.key != null) writeString(0x0a, h.key);
  if (h.value != null) writeString(0x12, h.value);
  if (h.rawValue != null) throw UNSUPPORTED;
  endDelimited(at);
}

function boolValue(b: Json): void {
  const at = beginDelimited(0x12);
  if (b.value != null) writeBool(0x08, b.value);
  endDelimited(at);
}

function writeBool(tag: number, v: unknown): void {
  ensure(2);
  out[w++] = tag;
  out[w++] = v ? 1 : 0;
}

function queryParameter(p: Json): void {
  const at = beginDelimited(0x3a);
  if (p.key != null) writeString(0x0a, p.key);
  if (p.value != null) writeString(0x12, p.value);
  endDelimited(at);
}

function struct(tag: number, s: Json, depth: number): void {
  if (depth > MAX_STRUCT_DEPTH) throw UNSUPPORTED;
  const at = beginDelimited(tag);
  if (s.fields) {
    const fields = plain(s.fields);
    for (const key of Object.keys(fields)) {
      const entry = beginDelimited(0x0a);
      writeString(0x0a, key);
      value(0x12, plain(fields[key]), depth + 1);
      endDelimited(entry);
    }
  }
  endDelimited(at);
}

function value(tag: number, v: Json, depth: number): void {
  const at = beginDelimited(tag);
  const nullValue = v.nullValue;
  if (nullValue === 'NULL_VALUE' || nullValue === 0) writeBool(0x08, 0);
  else if (typeof nullValue === 'number') throw UNSUPPORTED;
  if (v.numberValue != null) writeDouble(v.numberValue);
  if (v.stringValue != null) writeString(0x1a, v.stringValue);
  if (v.boolValue != null) writeBool(0x20, v.boolValue);
  if (v.structValue != null) struct(0x2a, plain(v.structValue), depth);
  if (v.listValue != null) listValue(plain(v.listValue), depth);
  endDelimited(at);
}

function writeDouble(v: unknown): void {
  if (typeof v !== 'number') throw UNSUPPORTED;
  ensure(9);
  out[w++] = 0x11;
  out.writeDoubleLE(v, w);
  w += 8;
}

function listValue(l: Json, depth: number): void {
  if (depth > MAX_STRUCT_DEPTH) throw UNSUPPORTED;
  const at = beginDelimited(0x32);
  const values = list(l.values);
  if (values) for (const v of values) value(0x0a, plain(v), depth + 1);
  endDelimited(at);
}
