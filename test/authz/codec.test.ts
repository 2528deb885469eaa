/**
 * The hand-written ext_authz codec against proto-loader, its reference: seeded random CheckRequests
 * (built both as objects through `requestSerialize` and byte by byte, to reach what no encoder
 * writes: unknown fields, groups, repeated and out-of-order fields, invalid UTF-8, odd map entries)
 * must decode to the same object, mutated bytes must never decode to something protobufjs would not
 * return, and every decision must encode to the bytes `responseSerialize` writes.
 */
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeCheckRequest, encodeCheckResponse, MAX_REQUEST_HEADERS } from '../../src/authz/codec.ts';
import type { Decision, Mutations } from '../../src/authz/decision.ts';
import { authorizationServiceDefinition } from '../../src/authz/proto.ts';
import { buildCheckResponse } from '../../src/authz/response.ts';
import { ENVOY_INCLUDE_DIRS } from '../../src/lib/protos.ts';

const check = authorizationServiceDefinition().Check!;
const reference = (bytes: Buffer): unknown => check.requestDeserialize(bytes);

// --- protobufjs types, loaded as proto.ts loads them -------------------------------------------

interface PbField { id: number; name: string; type: string; repeated: boolean; map?: boolean; keyType?: string }
interface PbType { fieldsArray: PbField[]; fromObject(o: object): object; encode(m: object): { finish(): Uint8Array } }
const require = createRequire(import.meta.url);
require('@grpc/proto-loader');
const root = (require('@grpc/proto-loader/build/src/util.js') as { loadProtosWithOptionsSync(f: string, o: object): { lookupType(n: string): PbType } })
  .loadProtosWithOptionsSync('envoy/service/auth/v3/external_auth.proto', { keepCase: false, longs: String, enums: String, bytes: String, defaults: false, oneofs: false, json: true, includeDirs: ENVOY_INCLUDE_DIRS });
const metadataType = root.lookupType('envoy.config.core.v3.Metadata');

// --- deterministic randomness ------------------------------------------------------------------

class Rng {
  private state: number;
  constructor(seed: number) { this.state = seed >>> 0; }
  /** mulberry32 */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(items: readonly T[]): T { return items[this.int(items.length)]!; }
}

const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:;=?&%+ ';
const UNICODE = ['é', 'ß', 'Ω', 'ж', '中', '文', '🙂', '𝄞', '\u0301', '\u200b', '\u{10ffff}', '\ud800', '\udc00', '\0', '\n', '"', '\\'];
const KEYS = ['__proto__', '0', '12', '4294967295', '-1', '', 'constructor', 'toString', ':authority', 'x-request-id', 'authorization', 'content-type', 'Upper-Case'];

function asciiText(r: Rng, max: number): string {
  let s = '';
  for (let n = r.int(max + 1); n > 0; n--) s += ASCII[r.int(ASCII.length)];
  return s;
}

/** A JS string: empty, ASCII, unicode (with lone surrogates), short or long (both encoder paths). */
function text(r: Rng): string {
  switch (r.int(7)) {
    case 0: return '';
    case 1: return asciiText(r, 12);
    case 2: return asciiText(r, 400);
    case 3: return r.pick(KEYS);
    default: {
      let s = '';
      for (let n = r.int(r.chance(0.5) ? 20 : 120); n > 0; n--) s += r.chance(0.5) ? r.pick(UNICODE) : ASCII[r.int(ASCII.length)];
      return s;
    }
  }
}

const INVALID_UTF8: readonly number[][] = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80]];

/** Bytes of a string field: valid UTF-8 of `text`, or with invalid sequences mixed in. */
function textBytes(r: Rng): Buffer {
  if (!r.chance(0.2)) return Buffer.from(text(r));
  const parts: number[] = [];
  for (let n = 1 + r.int(8); n > 0; n--) {
    if (r.chance(0.5)) parts.push(...r.pick(INVALID_UTF8));
    else parts.push(...Buffer.from(text(r).slice(0, 10)));
  }
  return Buffer.from(parts);
}

function randomBytes(r: Rng): Buffer {
  const b = Buffer.alloc(r.pick([0, 1, 2, 3, 4, 5, 30, 200]));
  for (let i = 0; i < b.length; i++) b[i] = r.int(256);
  return b;
}

const INT64S: readonly bigint[] = [0n, 1n, 127n, 128n, 4294967295n, 4294967296n, 9007199254740991n, 9007199254740993n, 9223372036854775807n, -1n, -9223372036854775808n, -4294967296n, 1234567890123n];
const INT32S: readonly number[] = [0, 1, 2, 127, 128, 65535, 2147483647, -1, -2147483648, 999999999];
const UINT32S: readonly number[] = [0, 1, 80, 443, 8080, 65535, 65536, 2147483648, 4294967295];

// --- a minimal protobuf writer, to build messages byte by byte ----------------------------------

function varint(v: bigint | number): Buffer {
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return Buffer.from(out);
}
const tag = (field: number, wireType: number): Buffer => varint(BigInt(field) * 8n + BigInt(wireType));
const lenField = (field: number, payload: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(payload.length), payload]);
const intField = (field: number, v: bigint | number): Buffer => Buffer.concat([tag(field, 0), varint(v)]);

/** A field no specialised message knows, of any wire type (groups nested, varints overlong). */
function unknownField(r: Rng, known: readonly number[], depth = 0): Buffer {
  let field: number;
  do field = r.pick([0, 14, 15, 16, 20, 31, 32, 100, 1000, 536870911]); while (known.includes(field));
  switch (r.int(depth > 2 ? 4 : 5)) {
    case 0: return r.chance(0.2) ? Buffer.concat([tag(field, 0), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]) : intField(field, r.pick(INT64S));
    case 1: return Buffer.concat([tag(field, 1), Buffer.alloc(8, 7)]);
    case 2: return lenField(field, randomBytes(r));
    case 3: return Buffer.concat([tag(field, 5), Buffer.alloc(4, 9)]);
    default: {
      const inner = Array.from({ length: r.int(3) }, () => unknownField(r, [], depth + 1));
      return Buffer.concat([tag(field, 3), ...inner, tag(r.chance(0.7) ? field : 9, 4)]);
    }
  }
}

/** Joins fields: sometimes shuffled, sometimes with unknown fields in between. */
function message(r: Rng, fields: Buffer[], known: readonly number[]): Buffer {
  const parts = [...fields];
  if (r.chance(0.15)) parts.sort(() => r.next() - 0.5);
  if (r.chance(0.2)) for (let n = 1 + r.int(2); n > 0; n--) parts.splice(r.int(parts.length + 1), 0, unknownField(r, known));
  return Buffer.concat(parts);
}

/** Adds `make()` zero, one or (sometimes) two times: a non-repeated field seen twice keeps the last. */
function maybe(r: Rng, out: Buffer[], p: number, make: () => Buffer): void {
  if (!r.chance(p)) return;
  out.push(make());
  if (r.chance(0.07)) out.push(make());
}

function mapEntryBytes(r: Rng, field: number): Buffer {
  const key = r.chance(0.3) ? Buffer.from(r.pick(KEYS)) : textBytes(r);
  const parts: Buffer[] = [];
  if (!r.chance(0.05)) parts.push(lenField(1, key));
  if (!r.chance(0.05)) parts.push(lenField(2, textBytes(r)));
  if (r.chance(0.05)) parts.push(lenField(1, Buffer.from(r.pick(KEYS))));
  return lenField(field, message(r, parts, [1, 2]));
}

function socketAddressBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.3, () => intField(1, r.pick([0, 1, 2, -1])));
  maybe(r, f, 0.8, () => lenField(2, textBytes(r)));
  maybe(r, f, 0.7, () => intField(3, r.pick(UINT32S)));
  maybe(r, f, 0.1, () => lenField(4, textBytes(r)));
  maybe(r, f, 0.1, () => lenField(5, textBytes(r)));
  maybe(r, f, 0.1, () => intField(6, r.pick([0, 1, 2, 4294967296])));
  return message(r, f, [1, 2, 3, 4, 5, 6]);
}

function addressBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.8, () => lenField(1, socketAddressBytes(r)));
  maybe(r, f, 0.1, () => lenField(2, message(r, [lenField(1, textBytes(r)), intField(2, r.pick(UINT32S))].filter(() => r.chance(0.7)), [1, 2])));
  maybe(r, f, 0.1, () => lenField(3, message(r, [lenField(1, textBytes(r)), lenField(2, textBytes(r))].filter(() => r.chance(0.7)), [1, 2])));
  return message(r, f, [1, 2, 3]);
}

function peerBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.8, () => lenField(1, addressBytes(r)));
  maybe(r, f, 0.3, () => lenField(2, textBytes(r)));
  for (let n = r.chance(0.3) ? r.int(6) : 0; n > 0; n--) f.push(mapEntryBytes(r, 3));
  maybe(r, f, 0.7, () => lenField(4, textBytes(r)));
  maybe(r, f, 0.2, () => lenField(5, textBytes(r)));
  return message(r, f, [1, 2, 3, 4, 5]);
}

function headerValueBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.95, () => lenField(1, r.chance(0.5) ? Buffer.from(r.pick(KEYS)) : textBytes(r)));
  maybe(r, f, 0.4, () => lenField(2, textBytes(r)));
  maybe(r, f, 0.6, () => lenField(3, randomBytes(r)));
  return message(r, f, [1, 2, 3]);
}

function httpRequestBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  for (const field of [1, 2]) maybe(r, f, 0.7, () => lenField(field, textBytes(r)));
  for (let n = r.chance(0.8) ? r.int(r.chance(0.2) ? 80 : 8) : 0; n > 0; n--) f.push(mapEntryBytes(r, 3));
  for (const field of [4, 5, 6, 7, 8]) maybe(r, f, 0.5, () => lenField(field, textBytes(r)));
  maybe(r, f, 0.4, () => intField(9, r.pick(INT64S)));
  for (const field of [10, 11]) maybe(r, f, 0.5, () => lenField(field, textBytes(r)));
  maybe(r, f, 0.3, () => lenField(12, randomBytes(r)));
  maybe(r, f, 0.3, () => lenField(13, message(r, Array.from({ length: r.int(6) }, () => lenField(1, headerValueBytes(r))), [1])));
  return message(r, f, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
}

function requestBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.4, () => lenField(1, message(r, [intField(1, r.pick(INT64S)), intField(2, r.pick(INT32S))].filter(() => r.chance(0.8)), [1, 2])));
  maybe(r, f, 0.9, () => lenField(2, httpRequestBytes(r)));
  return message(r, f, [1, 2]);
}

/** google.protobuf.Struct as proto-loader's object form, nested. */
function structObject(r: Rng, depth: number): object {
  const fields: Record<string, object> = {};
  for (let n = r.int(5); n > 0; n--) fields[r.chance(0.2) ? r.pick(KEYS) : asciiText(r, 8)] = valueObject(r, depth);
  return { fields };
}

function valueObject(r: Rng, depth: number): object {
  switch (r.int(depth > 2 ? 4 : 6)) {
    case 0: return { nullValue: 'NULL_VALUE' };
    case 1: return { numberValue: r.pick([0, -0, 1.5, -1e300, 2 ** 53 + 2, Number.NaN, Number.POSITIVE_INFINITY]) };
    case 2: return { stringValue: text(r) };
    case 3: return { boolValue: r.chance(0.5) };
    case 4: return { structValue: structObject(r, depth + 1) };
    default: return { listValue: { values: Array.from({ length: r.int(4) }, () => valueObject(r, depth + 1)) } };
  }
}

const ANY_VALUES: readonly (() => object)[] = [
  () => ({ '@type': 'type.googleapis.com/envoy.config.core.v3.SocketAddress', address: '10.0.0.1', portValue: 8080 }),
  () => ({ '@type': 'type.googleapis.com/envoy.config.core.v3.HeaderValue', key: 'k', rawValue: 'AQI=' }),
  () => ({ '@type': 'type.googleapis.com/envoy.type.v3.HttpStatus', code: 'Forbidden' }),
  () => ({ type_url: 'type.googleapis.com/not.a.known.Type', value: 'AQID' }),
];

function metadataObject(r: Rng): object {
  const filterMetadata: Record<string, object> = {};
  for (let n = r.int(3); n > 0; n--) filterMetadata[r.pick(['envoy.filters.http.jwt_authn', 'istio', 'a'])] = structObject(r, 0);
  const typedFilterMetadata: Record<string, object> = {};
  for (let n = r.int(3); n > 0; n--) typedFilterMetadata[r.pick(['t1', 't2'])] = r.pick(ANY_VALUES)();
  return { filterMetadata, typedFilterMetadata };
}

const metadataBytes = (r: Rng): Buffer => Buffer.from(metadataType.encode(metadataType.fromObject(metadataObject(r))).finish());

function attributeContextBytes(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.8, () => lenField(1, peerBytes(r)));
  maybe(r, f, 0.8, () => lenField(2, peerBytes(r)));
  maybe(r, f, 0.9, () => lenField(4, requestBytes(r)));
  for (let n = r.chance(0.3) ? r.int(5) : 0; n > 0; n--) f.push(mapEntryBytes(r, 10));
  maybe(r, f, 0.2, () => lenField(11, metadataBytes(r)));
  maybe(r, f, 0.3, () => lenField(12, message(r, r.chance(0.8) ? [lenField(1, textBytes(r))] : [], [1])));
  maybe(r, f, 0.1, () => lenField(13, metadataBytes(r)));
  return message(r, f, [1, 2, 4, 10, 11, 12, 13]);
}

/** A CheckRequest built byte by byte. */
function wireCheckRequest(r: Rng): Buffer {
  const f: Buffer[] = [];
  maybe(r, f, 0.97, () => lenField(1, attributeContextBytes(r)));
  return message(r, f, [1]);
}

/** A CheckRequest as an object, for `requestSerialize` (explicit default values included). */
function objectCheckRequest(r: Rng): object {
  const some = (p: number, o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(() => r.chance(p)));
  const map = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: r.int(n) }, () => [r.chance(0.3) ? r.pick(KEYS) : text(r), text(r)]));
  const peer = () => some(0.7, {
    address: some(0.8, { socketAddress: some(0.8, { protocol: r.pick(['TCP', 'UDP', 0, 1]), address: text(r), portValue: r.pick(UINT32S), namedPort: text(r), resolverName: text(r), ipv4Compat: r.chance(0.5) }), pipe: { path: text(r), mode: r.pick(UINT32S) }, envoyInternalAddress: some(0.5, { serverListenerName: text(r), endpointId: text(r) }) }),
    service: text(r), labels: map(4), principal: text(r), certificate: text(r),
  });
  const http = some(0.6, {
    id: text(r), method: r.pick(['GET', 'POST', '']), headers: map(r.chance(0.2) ? 60 : 6), path: text(r), host: text(r), scheme: text(r), query: text(r), fragment: text(r),
    size: String(r.pick(INT64S)), protocol: text(r), body: text(r), rawBody: randomBytes(r).toString('base64'),
    headerMap: { headers: Array.from({ length: r.int(5) }, () => some(0.7, { key: text(r), value: text(r), rawValue: randomBytes(r).toString('base64') })) },
  });
  const attributes = some(0.8, {
    source: peer(), destination: peer(),
    request: some(0.9, { time: some(0.8, { seconds: String(r.pick(INT64S)), nanos: r.pick(INT32S) }), http }),
    contextExtensions: map(4), metadataContext: metadataObject(r), routeMetadataContext: metadataObject(r), tlsSession: some(0.7, { sni: text(r) }),
  });
  return r.chance(0.97) ? { attributes } : {};
}

// --- comparison --------------------------------------------------------------------------------

/** Every own key, depth first and in order, with the type of its value (undefined included). */
function keyPaths(value: unknown, path = '', out: string[] = []): string[] {
  if (value === null || typeof value !== 'object') return out;
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    out.push(`${path}/${key}:${Array.isArray(v) ? 'array' : typeof v}`);
    keyPaths(v, `${path}/${key}`, out);
  }
  return out;
}

function expectSameDecoding(bytes: Buffer): void {
  const want = reference(bytes);
  const got = decodeCheckRequest(bytes);
  expect(JSON.stringify(got)).toBe(JSON.stringify(want));
  expect(keyPaths(got)).toStrictEqual(keyPaths(want));
  // Not toStrictEqual: it takes an own "constructor" key holding an object (a Struct field name
  // here) for a type tag and calls two equal trees different. Node's check compares prototypes too.
  expect(isDeepStrictEqual(got, want)).toBe(true);
}

type Outcome = { value: unknown } | { error: Error };
function attempt(fn: () => unknown): Outcome {
  try {
    return { value: fn() };
  } catch (error) {
    return { error: error as Error };
  }
}

/** Where protobufjs silently misreads malformed input and the codec refuses it (see codec.ts). */
const STRICTER_THAN_PROTOBUFJS = /unexpected wire type|past the end of its message|-byte varint in a 32-bit field|varint longer than 10 bytes|truncated varint/;

/** Malformed input: either both refuse it, or both return the same; the codec only refuses more for documented reasons. */
function expectNoLooserThanReference(bytes: Buffer): 'both-ok' | 'both-throw' | 'stricter' {
  const want = attempt(() => reference(bytes));
  const got = attempt(() => decodeCheckRequest(bytes));
  if ('error' in got) {
    expect(got.error).toBeInstanceOf(Error);
    expect(got.error.message).toMatch(/^malformed CheckRequest: .+ at byte \d+$/);
    if ('error' in want) return 'both-throw';
    expect(got.error.message).toMatch(STRICTER_THAN_PROTOBUFJS);
    return 'stricter';
  }
  expect('error' in want, `protobufjs refused what the codec accepted: ${bytes.toString('hex')}`).toBe(false);
  expect(JSON.stringify(got.value)).toBe(JSON.stringify((want as { value: unknown }).value));
  expect(keyPaths(got.value)).toStrictEqual(keyPaths((want as { value: unknown }).value));
  expect(isDeepStrictEqual(got.value, (want as { value: unknown }).value)).toBe(true);
  return 'both-ok';
}

// --- decoding ----------------------------------------------------------------------------------

describe('decodeCheckRequest', () => {
  it('decodes a CheckRequest exactly as proto-loader does (objects through requestSerialize)', () => {
    const r = new Rng(0xc0dec);
    for (let i = 0; i < 1500; i++) expectSameDecoding(check.requestSerialize(objectCheckRequest(r)));
  });

  it('decodes a CheckRequest exactly as proto-loader does (unknown, repeated, reordered fields, invalid UTF-8, odd map entries)', () => {
    const r = new Rng(42);
    for (let i = 0; i < 3000; i++) expectSameDecoding(wireCheckRequest(r));
  });

  it('keeps explicitly encoded default values as own properties', () => {
    const bytes = lenField(1, Buffer.concat([
      lenField(1, lenField(1, lenField(1, Buffer.concat([intField(1, 0), lenField(2, Buffer.alloc(0)), intField(3, 0), intField(6, 0)])))),
      lenField(4, lenField(2, Buffer.concat([lenField(4, Buffer.alloc(0)), intField(9, 0), lenField(12, Buffer.alloc(0)), lenField(13, Buffer.alloc(0))]))),
      lenField(12, Buffer.alloc(0)),
    ]));
    expect(decodeCheckRequest(bytes)).toStrictEqual({
      attributes: {
        source: { address: { socketAddress: { protocol: 'TCP', address: '', portValue: 0, ipv4Compat: false } } },
        request: { http: { path: '', size: '0', rawBody: '', headerMap: {} } },
        tlsSession: {},
      },
    });
    expectSameDecoding(bytes);
  });

  it('replaces a sub-message seen twice instead of merging it, and accumulates map entries', () => {
    const http = (fields: Buffer[]) => lenField(1, lenField(4, lenField(2, Buffer.concat(fields))));
    const entry = (k: string, v: string) => lenField(3, Buffer.concat([lenField(1, Buffer.from(k)), lenField(2, Buffer.from(v))]));
    const bytes = Buffer.concat([http([lenField(4, Buffer.from('/first')), entry('a', '1')]), http([entry('b', '2'), entry('b', '3'), entry('__proto__', 'p')])]);
    const got = decodeCheckRequest(bytes) as { attributes: { request: { http: { headers: Record<string, string> } } } };
    expect(got.attributes.request.http).not.toHaveProperty('path');
    expect(Object.keys(got.attributes.request.http.headers)).toStrictEqual(['b', '__proto__']);
    expect(got.attributes.request.http.headers.b).toBe('3');
    expect(Object.getPrototypeOf(got.attributes.request.http.headers)).toBe(Object.prototype);
    expectSameDecoding(bytes);
  });

  it('returns the right header names when thousands of them compete for the key cache', () => {
    const r = new Rng(11);
    // Requests hold at most MAX_REQUEST_HEADERS headers: the thousands compete across requests (the cache outlives them).
    for (let round = 0; round < 9; round++) {
      const headers: Record<string, string> = {};
      for (let i = 0; i < MAX_REQUEST_HEADERS; i++) headers[`${asciiText(r, 1 + r.int(31)) || 'k'}${i % 7}`] = String(i);
      const bytes = check.requestSerialize({ attributes: { request: { http: { headers } } } });
      expectSameDecoding(bytes);
      expect(Object.keys((decodeCheckRequest(bytes) as { attributes: { request: { http: { headers: object } } } }).attributes.request.http.headers)).toStrictEqual(Object.keys(headers));
    }
    // Names that differ only in their first or last byte.
    const headers: Record<string, string> = {};
    for (let c = 0x21; c < 0x7f; c++) {
      for (const stem of ['x-envoy-header-', 'a', 'authorization-', 'x'.repeat(30)]) {
        headers[`${stem}${String.fromCharCode(c)}`] = `${stem}${c}`;
        headers[`${String.fromCharCode(c)}${stem}`] = `${c}${stem}`;
      }
    }
    const bytes = check.requestSerialize({ attributes: { request: { http: { headers } } } });
    expectSameDecoding(bytes);
    expectSameDecoding(bytes);
  });

  it('turns int64 sizes into signed decimal strings, 64-bit values included', () => {
    for (const v of INT64S) {
      const bytes = lenField(1, lenField(4, lenField(2, intField(9, v))));
      expect(decodeCheckRequest(bytes)).toStrictEqual({ attributes: { request: { http: { size: String(v) } } } });
      expectSameDecoding(bytes);
    }
  });

  it('replaces invalid UTF-8 with U+FFFD as protobufjs does', () => {
    for (const bad of INVALID_UTF8) {
      const bytes = lenField(1, lenField(12, lenField(1, Buffer.from([0x61, ...bad, 0x62]))));
      expectSameDecoding(bytes);
      expect(JSON.stringify(decodeCheckRequest(bytes))).toContain('\ufffd');
    }
  });

  it('decodes metadata_context through protobufjs, Any as an "@type" object', () => {
    const metadata = { filterMetadata: { istio: { fields: { n: { numberValue: Number.NaN } } } }, typedFilterMetadata: { t: { '@type': 'type.googleapis.com/envoy.config.core.v3.SocketAddress', address: 'a', portValue: 1 } } };
    const bytes = check.requestSerialize({ attributes: { metadataContext: metadata } });
    expect(decodeCheckRequest(bytes)).toStrictEqual({
      attributes: { metadataContext: { filterMetadata: { istio: { fields: { n: { numberValue: 'NaN' } } } }, typedFilterMetadata: { t: { address: 'a', portValue: 1, '@type': 'type.googleapis.com/envoy.config.core.v3.SocketAddress' } } } },
    });
    expectSameDecoding(bytes);
  });

  it('refuses group nesting where protobufjs does, at any message depth', () => {
    const groups = (n: number): Buffer => Buffer.concat([...Array.from({ length: n }, () => tag(20, 3)), ...Array.from({ length: n }, () => tag(20, 4))]);
    const outcomes = new Set<string>();
    for (let n = 95; n <= 103; n++) {
      outcomes.add(expectNoLooserThanReference(groups(n)));
      outcomes.add(expectNoLooserThanReference(lenField(1, lenField(4, lenField(2, lenField(13, lenField(1, groups(n))))))));
    }
    expect(outcomes).toStrictEqual(new Set(['both-ok', 'both-throw']));
  });

  it('throws on a message truncated at any byte offset', () => {
    const r = new Rng(7);
    for (let i = 0; i < 8; i++) {
      let bytes = lenField(1, attributeContextBytes(r));
      while (bytes.length > 1000) bytes = lenField(1, attributeContextBytes(r));
      expect(decodeCheckRequest(bytes.subarray(0, 0))).toStrictEqual({});
      for (let cut = 1; cut < bytes.length; cut++) {
        const truncated = bytes.subarray(0, cut);
        expect(() => reference(truncated)).toThrow();
        expect(() => decodeCheckRequest(truncated)).toThrow(/^malformed CheckRequest: (truncated varint|length \d+ past the end of its message) at byte \d+$/);
      }
    }
  });

  it('throws on a tag whose wire type does not fit its field, or is invalid', () => {
    const r = new Rng(8);
    let tested = 0;
    for (let i = 0; i < 15; i++) {
      const bytes = lenField(1, attributeContextBytes(r));
      for (const offset of tagOffsets(bytes)) {
        for (const wireType of [0, 1, 2, 3, 4, 5, 6, 7]) {
          if (wireType === (bytes[offset]! & 7)) continue;
          const corrupted = Buffer.from(bytes);
          corrupted[offset] = (corrupted[offset]! & ~7) | wireType;
          expect(() => decodeCheckRequest(corrupted)).toThrow(/^malformed CheckRequest: .+ at byte \d+$/);
          expectNoLooserThanReference(corrupted);
          tested++;
        }
      }
    }
    expect(tested).toBeGreaterThan(1000);
  });

  it('never returns what protobufjs would not for randomly damaged bytes', () => {
    const r = new Rng(9);
    const counts = { 'both-ok': 0, 'both-throw': 0, stricter: 0 };
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(wireCheckRequest(r));
      if (bytes.length === 0) continue;
      const damaged = damage(r, bytes);
      counts[expectNoLooserThanReference(damaged)]++;
    }
    expect(counts['both-ok']).toBeGreaterThan(100);
    expect(counts['both-throw']).toBeGreaterThan(100);
  });

  it('names what is wrong', () => {
    expect(() => decodeCheckRequest(Buffer.from([0x0a]))).toThrow('malformed CheckRequest: truncated varint at byte 1');
    expect(() => decodeCheckRequest(Buffer.from([0x0a, 0x05, 0x01]))).toThrow('malformed CheckRequest: length 5 past the end of its message at byte 2');
    expect(() => decodeCheckRequest(Buffer.from([0x17]))).toThrow('malformed CheckRequest: invalid wire type 7 at byte 1');
    expect(() => decodeCheckRequest(Buffer.from([0x08, 0x01]))).toThrow('malformed CheckRequest: field 1 with unexpected wire type 0 at byte 1');
  });

  it('refuses what protobufjs silently misreads: a string longer than its message, a 6-byte 32-bit varint', () => {
    // protobufjs truncates the string to "ab" and carries on.
    const longString = lenField(1, Buffer.concat([lenField(12, Buffer.from([0x0a, 0x05, 0x61, 0x62])), lenField(4, Buffer.alloc(0))]));
    expect(reference(longString)).toStrictEqual({ attributes: { tlsSession: { sni: 'ab' }, request: {} } });
    expect(() => decodeCheckRequest(longString)).toThrow(/length 5 past the end of its message/);
    // protobufjs takes the 5 bytes after the 5th as part of the varint, whatever they are.
    const sixBytes = lenField(1, lenField(12, Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0a, 0x01, 0x61, 0x00])));
    expect(reference(sixBytes)).toStrictEqual({ attributes: { tlsSession: { sni: '' } } });
    expect(() => decodeCheckRequest(sixBytes)).toThrow(/6-byte varint in a 32-bit field/);
  });

  it('knows every field of the messages it decodes itself', () => {
    const fields = (name: string): string[] => root.lookupType(name).fieldsArray.map((f) => `${f.id} ${f.name} ${f.map ? `map<${f.keyType},` : ''}${f.repeated ? 'repeated ' : ''}${f.type}${f.map ? '>' : ''}`).sort();
    expect(fields('envoy.service.auth.v3.CheckRequest')).toStrictEqual(['1 attributes AttributeContext']);
    expect(fields('envoy.service.auth.v3.AttributeContext')).toStrictEqual(['1 source Peer', '10 contextExtensions map<string,string>', '11 metadataContext config.core.v3.Metadata', '12 tlsSession TLSSession', '13 routeMetadataContext config.core.v3.Metadata', '2 destination Peer', '4 request Request']);
    expect(fields('envoy.service.auth.v3.AttributeContext.Peer')).toStrictEqual(['1 address config.core.v3.Address', '2 service string', '3 labels map<string,string>', '4 principal string', '5 certificate string']);
    expect(fields('envoy.config.core.v3.Address')).toStrictEqual(['1 socketAddress SocketAddress', '2 pipe Pipe', '3 envoyInternalAddress EnvoyInternalAddress']);
    expect(fields('envoy.config.core.v3.SocketAddress')).toStrictEqual(['1 protocol Protocol', '2 address string', '3 portValue uint32', '4 namedPort string', '5 resolverName string', '6 ipv4Compat bool']);
    expect(fields('envoy.config.core.v3.Pipe')).toStrictEqual(['1 path string', '2 mode uint32']);
    expect(fields('envoy.config.core.v3.EnvoyInternalAddress')).toStrictEqual(['1 serverListenerName string', '2 endpointId string']);
    expect(fields('envoy.service.auth.v3.AttributeContext.Request')).toStrictEqual(['1 time google.protobuf.Timestamp', '2 http HttpRequest']);
    expect(fields('google.protobuf.Timestamp')).toStrictEqual(['1 seconds int64', '2 nanos int32']);
    expect(fields('envoy.service.auth.v3.AttributeContext.HttpRequest')).toStrictEqual(['1 id string', '10 protocol string', '11 body string', '12 rawBody bytes', '13 headerMap config.core.v3.HeaderMap', '2 method string', '3 headers map<string,string>', '4 path string', '5 host string', '6 scheme string', '7 query string', '8 fragment string', '9 size int64']);
    expect(fields('envoy.config.core.v3.HeaderMap')).toStrictEqual(['1 headers repeated HeaderValue']);
    expect(fields('envoy.config.core.v3.HeaderValue')).toStrictEqual(['1 key string', '2 value string', '3 rawValue bytes']);
    expect(fields('envoy.service.auth.v3.AttributeContext.TLSSession')).toStrictEqual(['1 sni string']);
  });
});

/** Offsets of the tags of known fields in a CheckRequest built by the generators (walking the specialised messages). */
function tagOffsets(bytes: Buffer): number[] {
  const messages: Record<string, { known: number[]; nested: Record<number, string> }> = {
    CheckRequest: { known: [1], nested: { 1: 'AttributeContext' } },
    AttributeContext: { known: [1, 2, 4, 10, 11, 12, 13], nested: { 1: 'Peer', 2: 'Peer', 4: 'Request', 10: 'Entry', 12: 'Tls' } },
    Peer: { known: [1, 2, 3, 4, 5], nested: { 1: 'Address', 3: 'Entry' } },
    Address: { known: [1, 2, 3], nested: { 1: 'SocketAddress', 2: 'Pair', 3: 'Pair' } },
    SocketAddress: { known: [1, 2, 3, 4, 5, 6], nested: {} },
    Request: { known: [1, 2], nested: { 1: 'Pair', 2: 'Http' } },
    Http: { known: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], nested: { 3: 'Entry', 13: 'HeaderMap' } },
    HeaderMap: { known: [1], nested: { 1: 'HeaderValue' } },
    HeaderValue: { known: [1, 2, 3], nested: {} },
    Entry: { known: [1, 2], nested: {} },
    Pair: { known: [1, 2], nested: {} },
    Tls: { known: [1], nested: {} },
  };
  const offsets: number[] = [];
  const readVarint = (at: { p: number }): number => {
    let v = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[at.p++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  const walk = (type: string, start: number, end: number): void => {
    const at = { p: start };
    while (at.p < end) {
      const tagAt = at.p;
      const t = readVarint(at);
      const field = Math.floor(t / 8);
      const wireType = t % 8;
      if (messages[type]!.known.includes(field)) offsets.push(tagAt);
      if (wireType === 0) readVarint(at);
      else if (wireType === 1) at.p += 8;
      else if (wireType === 5) at.p += 4;
      else if (wireType === 2) {
        const len = readVarint(at);
        const inner = messages[type]!.nested[field];
        if (inner) walk(inner, at.p, at.p + len);
        at.p += len;
      } else return; // a group: stop walking this message
    }
  };
  walk('CheckRequest', 0, bytes.length);
  return offsets;
}

function damage(r: Rng, bytes: Buffer): Buffer {
  const b = Buffer.from(bytes);
  switch (r.int(4)) {
    case 0:
      for (let n = 1 + r.int(3); n > 0; n--) b[r.int(b.length)] = r.int(256);
      return b;
    case 1:
      b[r.int(b.length)]! ^= 1 << r.int(8);
      return b;
    case 2: {
      const at = r.int(b.length);
      return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + r.int(3))]);
    }
    default: {
      const at = r.int(b.length);
      return Buffer.concat([b.subarray(0, at), Buffer.from([r.int(256)]), b.subarray(at)]);
    }
  }
}

// --- encoding ----------------------------------------------------------------------------------

function headerList(r: Rng, max: number): { name: string; value: string; append?: boolean }[] {
  return Array.from({ length: r.int(max + 1) }, () => ({ name: r.chance(0.5) ? r.pick(KEYS) : text(r), value: text(r), ...(r.chance(0.3) ? { append: r.chance(0.7) } : {}) }));
}

function jsonValue(r: Rng, depth: number): unknown {
  switch (r.int(depth > 2 ? 5 : 7)) {
    case 0: return null;
    case 1: return r.pick([0, -0, 1, -7, 0.1, 1e21, 2 ** 53, Number.NaN, Number.NEGATIVE_INFINITY]);
    case 2: return text(r);
    case 3: return r.chance(0.5);
    case 4: return undefined;
    case 5: return Array.from({ length: r.int(4) }, () => jsonValue(r, depth + 1));
    default: return jsonObject(r, depth + 1);
  }
}

function jsonObject(r: Rng, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let n = r.int(5); n > 0; n--) {
    const key = r.chance(0.2) ? r.pick(KEYS) : asciiText(r, 10);
    Object.defineProperty(o, key, { value: jsonValue(r, depth), enumerable: true, configurable: true, writable: true });
  }
  return o;
}

function mutations(r: Rng): Mutations {
  return {
    requestHeaders: r.chance(0.5) ? headerList(r, 6) : [],
    requestHeadersToRemove: r.chance(0.5) ? Array.from({ length: 1 + r.int(3) }, () => text(r)) : [],
    responseHeaders: r.chance(0.5) ? headerList(r, 4) : [],
    queryParametersToSet: r.chance(0.3) ? Array.from({ length: 1 + r.int(3) }, () => ({ key: text(r), value: text(r) })) : [],
    queryParametersToRemove: r.chance(0.3) ? Array.from({ length: 1 + r.int(3) }, () => text(r)) : [],
    dynamicMetadata: r.chance(0.5) ? jsonObject(r, 0) : {},
  };
}

function denial(r: Rng): { reason: string; headers?: { name: string; value: string }[]; body?: string; dynamicMetadata?: Record<string, unknown> } {
  return {
    reason: r.chance(0.2) ? `RequestAuthentication shop/jwt: ${text(r)}` : text(r),
    ...(r.chance(0.5) ? { headers: headerList(r, 4) } : {}),
    ...(r.chance(0.4) ? { body: r.chance(0.1) ? 'x'.repeat(20_000) : text(r) } : {}),
    ...(r.chance(0.4) ? { dynamicMetadata: jsonObject(r, 0) } : {}),
  };
}

function decision(r: Rng, outcome: Decision['outcome']): Decision {
  switch (outcome) {
    case 'allow': return { outcome, reason: text(r) };
    case 'deny': return { outcome, ...denial(r), ...(r.chance(0.3) ? { status: r.pick([401, 403, 404, 418, 451]) } : {}) };
    case 'unauthenticated': return { outcome, ...denial(r), challenge: `Bearer realm="${text(r)}", error="invalid_token"` };
    case 'rate_limited': return { outcome, ...denial(r), retryAfterSeconds: r.pick([0, 0.2, 1, 59.5, 3600]), limit: text(r) };
    case 'bad_request': return { outcome, ...denial(r) };
  }
}

function expectSameEncoding(response: Record<string, unknown>): Buffer {
  const want = check.responseSerialize(response);
  const got = encodeCheckResponse(response);
  expect(Buffer.isBuffer(got)).toBe(true);
  expect(got.toString('hex')).toBe(want.toString('hex'));
  return got;
}

describe('encodeCheckResponse', () => {
  const OUTCOMES: readonly Decision['outcome'][] = ['allow', 'deny', 'unauthenticated', 'rate_limited', 'bad_request'];

  for (const outcome of OUTCOMES) {
    it(`encodes a ${outcome} response byte for byte as responseSerialize, and it decodes back`, () => {
      const r = new Rng(OUTCOMES.indexOf(outcome) + 100);
      for (let i = 0; i < 600; i++) {
        const d = decision(r, outcome);
        const response = buildCheckResponse(d, mutations(r), `dec-${i}`);
        const bytes = expectSameEncoding(response);
        const back = check.responseDeserialize(bytes) as { status: { code?: number }; dynamicMetadata: { fields: Record<string, { stringValue?: string }> }; deniedResponse?: { status: { code: number } }; okResponse?: object };
        expect(back.dynamicMetadata.fields.decision_id!.stringValue).toBe(`dec-${i}`);
        if (outcome === 'allow') expect(back.okResponse).toBeDefined();
        else expect(back.deniedResponse!.status.code).toBeDefined();
      }
    });
  }

  it('encodes an allow with each mutation list alone', () => {
    const r = new Rng(5);
    const none = { requestHeaders: [], requestHeadersToRemove: [], responseHeaders: [], queryParametersToSet: [], queryParametersToRemove: [], dynamicMetadata: {} };
    const lists: Partial<Mutations>[] = [
      {}, { requestHeaders: headerList(r, 3) }, { requestHeadersToRemove: ['authorization'] }, { responseHeaders: [{ name: 'x', value: '' }] },
      { queryParametersToSet: [{ key: 'k', value: 'v' }] }, { queryParametersToRemove: ['token'] }, { dynamicMetadata: { nested: { list: [1, 'a', null, true, { deep: [] }] } } },
    ];
    for (const extra of lists) expectSameEncoding(buildCheckResponse({ outcome: 'allow', reason: 'ok' }, { ...none, ...extra }, 'id'));
  });

  it('writes strings of every awkward length and content as protobufjs does', () => {
    const units = ['a', 'é', '中', '🙂', '\ud800', '\udc00', '\udc00\ud800'];
    const lengths = [0, 1, 2, 38, 39, 40, 41, 42, 43, 44, 63, 64, 127, 128, 129, 700, 5461, 20_000];
    for (const unit of units) {
      for (const length of lengths) {
        const value = `${unit.repeat(Math.ceil(length / unit.length))}`.slice(0, length);
        for (const edge of [value, `x${value}`, `${value}\ud83d`]) {
          expectSameEncoding({ status: { code: 7, message: edge }, deniedResponse: { headers: [{ header: { key: edge, value: edge } }], body: edge } });
        }
      }
    }
  });

  it('falls back to responseSerialize for shapes it does not write itself', () => {
    const shapes: Record<string, unknown>[] = [
      { status: { code: 0, details: [{ type_url: 'x', value: 'AQ==' }] } },
      { status: { code: '5' } },
      { status: { code: -3 } },
      { deniedResponse: { status: { code: 'Forbidden' }, headers: [{ header: { key: 'k', rawValue: 'AAEC' } }] } },
      { okResponse: { headers: [{ header: { key: 'k', value: 'v' }, appendAction: 'OVERWRITE_IF_EXISTS', keepEmptyValue: true }], dynamicMetadata: { fields: { a: { stringValue: 'b' } } } } },
      { okResponse: { headersToRemove: [1, 'x'] } },
      { dynamicMetadata: { fields: { n: { nullValue: 3 }, s: { numberValue: '1' }, t: { structValue: { fields: { deep: { listValue: { values: [] } } } } } } } },
      { dynamicMetadata: nestedStruct(40) },
      { okResponse: {}, deniedResponse: { body: '' }, unknownKey: 1 },
      {},
    ];
    for (const shape of shapes) expectSameEncoding(shape);
  });

  it('throws where responseSerialize throws', () => {
    for (const bad of [{ okResponse: { headers: {} } }, { dynamicMetadata: { fields: { a: 'not a Value' } } }, { status: 'x' }, { dynamicMetadata: nestedStruct(200) }]) {
      expect(() => check.responseSerialize(bad)).toThrow();
      expect(() => encodeCheckResponse(bad)).toThrow();
    }
  });
});

function nestedStruct(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { fields: {} };
  for (let i = 0; i < depth; i++) v = { fields: { d: { structValue: v } } };
  return v;
}
