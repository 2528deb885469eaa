/**
 * HPACK (RFC 7541) for our own HTTP/2 server: a decoder for request header blocks and a
 * stateless encoder for response blocks. The decoder faces hostile clients, so every length is
 * checked before anything is sliced or allocated, integers are bounded, and the header-list
 * limit (RFC 9113 §6.5.2) stops building output strings as soon as it is crossed while still
 * applying every table insertion, so the connection can answer 431 and carry on.
 */
import { huffmanDecode, huffmanDecodedLength, huffmanMaxDecodedLength, huffmanMinDecodedLength } from './huffman.ts';

/** Decoding failed: the connection must be closed with COMPRESSION_ERROR. */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

/** The decoded header list exceeded maxHeaderListSize; the dynamic table is still in sync. */
export class HeaderListTooLargeError extends Error {
  constructor(message = 'header list too large') {
    super(message);
    this.name = 'HeaderListTooLargeError';
  }
}

export interface HpackDecoderOptions {
  /** SETTINGS_HEADER_TABLE_SIZE we advertise: the most a dynamic table size update may ask for. Default 4096. */
  maxTableSize?: number;
  /** Largest decoded header list (sum of name.length + value.length + 32 per field, RFC 9113 §6.5.2). Default 65536. */
  maxHeaderListSize?: number;
}

export interface DecodedHeaders {
  /** Lowercase name → value; a repeated name's values joined with ', ' (`cookie`: '; '). No prototype. */
  headers: Record<string, string>;
  /** A pseudo-header came after a regular field (RFC 9113 §8.3: malformed). */
  pseudoAfterRegular: boolean;
  /** A field name had an uppercase letter (RFC 9113 §8.2.1: malformed). */
  uppercase: boolean;
  /** A pseudo-header appeared twice (RFC 9113 §8.3: malformed); joining would hide it otherwise. */
  duplicatePseudo: boolean;
}

/** RFC 7541 §4.1: each entry costs its octets plus this much. */
const ENTRY_OVERHEAD = 32;
/** The protocol's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
const DEFAULT_MAX_HEADER_LIST_SIZE = 65536;
/** Integers above this are an attack or a bug: no length or index gets near it. */
const MAX_INTEGER = 0x7fffffff;
/** 5 continuation bytes carry 35 bits: more than MAX_INTEGER needs. */
const MAX_CONTINUATION_BYTES = 5;
/** Literal-value cache: slots (a power of two) and the longest encoded string it keeps. */
const CACHE_SLOTS = 16;
const CACHE_MAX_OCTETS = 128;

/** RFC 7541 Appendix A, 1-based (index 0 unused). */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;
const STATIC_NAMES: readonly string[] = STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = STATIC_TABLE.map((e) => e[1]);

function hasUppercase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/**
 * The headers object's constructor. Its prototype has no prototype, so no name (`__proto__`,
 * `constructor`, `toString`) finds anything inherited, and `__proto__` is stored as an own
 * property. Unlike Object.create(null), whose objects start in V8's slow dictionary mode, these
 * get hidden classes shared by every request with the same header names: half the cost (and V8
 * turns an object with many keyed-added names into a dictionary by itself).
 */
const HeaderRecord = function HeaderRecord() {} as unknown as new () => Record<string, string>;
HeaderRecord.prototype = Object.create(null);

/** Module-wide Huffman output buffer: decoding is synchronous, so one is enough. */
let scratch = Buffer.allocUnsafe(4096);

export class HpackDecoder {
  readonly #maxTableSize: number;
  readonly #maxListSize: number;
  /** Current dynamic table capacity, as last set by a size update. */
  #capacity: number;
  /** Sum of the entry sizes in the dynamic table. */
  #size = 0;
  /** Ring buffer of entries, newest at #head; length is a power of two, grown on demand. */
  #names: string[] = new Array<string>(16).fill('');
  #values: string[] = new Array<string>(16).fill('');
  /** Per entry: its name has an uppercase letter (checked once at insertion). */
  #upper: boolean[] = new Array<boolean>(16).fill(false);
  #mask = 15;
  #head = 0;
  #count = 0;
  /** Read position in the block being decoded (shared with the small helpers below). */
  #pos = 0;
  /** Decoded length of the string last read by #readString (also when it was not kept). */
  #strLen = 0;
  /**
   * Recently decoded values of literals without indexing, by their encoded octets: nghttp2 never
   * indexes `:path`, so every request repeats it as a Huffman literal. Direct-mapped; a hit skips
   * the Huffman decoding and the string allocation.
   */
  #cacheBytes = Buffer.alloc(CACHE_SLOTS * CACHE_MAX_OCTETS);
  #cacheLengths = new Int32Array(CACHE_SLOTS).fill(-1);
  #cacheValues: string[] = new Array<string>(CACHE_SLOTS).fill('');

  constructor(options: HpackDecoderOptions = {}) {
    this.#maxTableSize = options.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.#maxListSize = options.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE;
    // The peer's encoder starts at the protocol default and needs a size update to go above it. A
    // smaller advertised size is taken as in force from the first block: a peer that inserts
    // entries before it has seen our SETTINGS would then lose sync, so advertise at least 4096.
    this.#capacity = Math.min(this.#maxTableSize, DEFAULT_TABLE_SIZE);
  }

  /** Sum of the dynamic table's entry sizes (RFC 7541 §4.1), for tests and metrics. */
  get dynamicTableSize(): number {
    return this.#size;
  }

  /** Number of entries in the dynamic table. */
  get dynamicTableLength(): number {
    return this.#count;
  }

  decode(block: Buffer): DecodedHeaders {
    const headers = new HeaderRecord();
    const end = block.length;
    const maxListSize = this.#maxListSize;
    let listSize = 0;
    let over = false;
    let sawField = false;
    let sawRegular = false;
    let pseudoAfterRegular = false;
    let uppercase = false;
    let duplicatePseudo = false;
    this.#pos = 0;

    while (this.#pos < end) {
      const first = block[this.#pos]!;
      let name: string | null;
      let value: string | null;
      let nameLen: number;
      let valueLen: number;
      let upper: boolean;

      if (first >= 0x80) {
        // §6.1 indexed field: both strings come from a table, nothing to allocate.
        const index = this.#integer(block, 0x7f);
        if (index === 0) throw new HpackError('indexed field with index 0');
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
          upper = false;
        } else {
          const slot = this.#slot(index);
          name = this.#names[slot]!;
          value = this.#values[slot]!;
          upper = this.#upper[slot]!;
        }
        nameLen = name.length;
        valueLen = value.length;
      } else if (first < 0x40 && first >= 0x20) {
        // §6.3 dynamic table size update: only before the first field of a block.
        if (sawField) throw new HpackError('dynamic table size update after a header field');
        const size = this.#integer(block, 0x1f);
        if (size > this.#maxTableSize) throw new HpackError(`dynamic table size update to ${size} above ${this.#maxTableSize}`);
        this.#capacity = size;
        this.#evict(size);
        continue;
      } else {
        // §6.2 literals: 01 incremental indexing (6-bit index), 0000 without / 0001 never indexed (4-bit).
        const indexing = first >= 0x40;
        const index = this.#integer(block, indexing ? 0x3f : 0x0f);
        // A string is only materialized when the table or the output will keep it.
        const tableRoom = indexing ? this.#capacity - ENTRY_OVERHEAD : -1;
        const listRoom = over ? -1 : maxListSize - listSize - ENTRY_OVERHEAD;
        const room = Math.max(tableRoom, listRoom);
        if (index === 0) {
          name = this.#readString(block, room);
          nameLen = this.#strLen;
          upper = name !== null && hasUppercase(name);
        } else if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index]!;
          nameLen = name.length;
          upper = false;
        } else {
          const slot = this.#slot(index);
          name = this.#names[slot]!;
          nameLen = name.length;
          upper = this.#upper[slot]!;
        }
        // Values of 0000 literals (not 0001 never-indexed: those are secrets) go through the cache.
        value = first < 0x10 ? this.#readCachedString(block, room - nameLen) : this.#readString(block, room - nameLen);
        valueLen = this.#strLen;
        // Whenever the entry fits the table, its room covered both strings: #insert relies on it.
        if (indexing) this.#insert(name, value, nameLen + valueLen + ENTRY_OVERHEAD, upper);
      }
      sawField = true;

      if (over) continue;
      listSize += nameLen + valueLen + ENTRY_OVERHEAD;
      if (listSize > maxListSize) {
        over = true;
        continue;
      }
      // Within the limit: both strings were materialized (their room covered them).
      const n = name!;
      const v = value!;
      if (upper) uppercase = true;
      if (n.charCodeAt(0) === 58) {
        if (sawRegular) pseudoAfterRegular = true;
      } else {
        sawRegular = true;
      }
      const existing = headers[n];
      if (existing === undefined) {
        headers[n] = v;
      } else {
        if (n.charCodeAt(0) === 58) duplicatePseudo = true;
        headers[n] = existing + (n === 'cookie' ? '; ' : ', ') + v;
      }
    }

    if (over) throw new HeaderListTooLargeError(`header list larger than ${maxListSize} octets`);
    return { headers, pseudoAfterRegular, uppercase, duplicatePseudo };
  }

  /** §5.1 integer with the prefix `mask` (2^N − 1), starting at #pos (known to be in the block). */
  #integer(block: Buffer, mask: number): number {
    let pos = this.#pos;
    let value = block[pos++]! & mask;
    if (value === mask) {
      // Multiplication, not shifts: bitwise ops would wrap at 32 bits before the bound check.
      let factor = 1;
      for (let i = 0; ; i++) {
        if (i === MAX_CONTINUATION_BYTES) throw new HpackError('integer too long');
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos++]!;
        value += (b & 0x7f) * factor;
        if (b < 0x80) break;
        factor *= 128;
      }
      if (value > MAX_INTEGER) throw new HpackError('integer overflow');
    }
    this.#pos = pos;
    return value;
  }

  /**
   * §5.2 string literal at #pos. Answers the string, or null when its decoded length exceeds
   * `room` (nobody will keep it: only validated and measured). #strLen gets the decoded length.
   */
  #readString(block: Buffer, room: number): string | null {
    if (this.#pos >= block.length) throw new HpackError('truncated string literal');
    const huffman = block[this.#pos]! >= 0x80;
    const length = this.#integer(block, 0x7f);
    const start = this.#pos;
    if (length > block.length - start) throw new HpackError('string literal past the end of the block');
    const end = start + length;
    this.#pos = end;
    if (!huffman) {
      this.#strLen = length;
      return length > room ? null : block.toString('latin1', start, end);
    }
    if (huffmanMinDecodedLength(length) > room) {
      // Certainly too long to keep: validate and count without writing anywhere.
      const n = huffmanDecodedLength(block, start, end);
      if (n < 0) throw new HpackError('invalid Huffman string');
      this.#strLen = n;
      return null;
    }
    const max = huffmanMaxDecodedLength(length);
    if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
    const n = huffmanDecode(block, start, end, scratch);
    if (n < 0) throw new HpackError('invalid Huffman string');
    this.#strLen = n;
    return n > room ? null : scratch.toString('latin1', 0, n);
  }

  /** #readString through the literal cache, for strings of up to CACHE_MAX_OCTETS encoded octets. */
  #readCachedString(block: Buffer, room: number): string | null {
    const pos = this.#pos;
    if (pos >= block.length) throw new HpackError('truncated string literal');
    // Key: the first octet (H bit, one-octet length) and the octets after it.
    const head = block[pos]!;
    const length = head & 0x7f;
    const start = pos + 1;
    if (length === 0x7f || length > block.length - start || length < 2) return this.#readString(block, room);
    const end = start + length;
    const slot = (length + head + block[start]! * 7 + block[end - 1]! * 31) & (CACHE_SLOTS - 1);
    const bytes = this.#cacheBytes;
    const base = slot * CACHE_MAX_OCTETS;
    if (this.#cacheLengths[slot] === head) {
      let i = 0;
      while (i < length && bytes[base + i] === block[start + i]) i++;
      if (i === length) {
        const value = this.#cacheValues[slot]!;
        this.#pos = end;
        this.#strLen = value.length;
        return value.length > room ? null : value;
      }
    }
    const value = this.#readString(block, room);
    if (value !== null) {
      block.copy(bytes, base, start, end);
      this.#cacheLengths[slot] = head;
      this.#cacheValues[slot] = value;
    }
    return value;
  }

  /** Ring slot of a dynamic index (STATIC_COUNT + 1 is the newest entry). */
  #slot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.#count) throw new HpackError(`index ${index} past the end of the table`);
    return (this.#head - i) & this.#mask;
  }

  /** §4.4: evicts until the entry fits; an entry larger than the capacity just empties the table. */
  #insert(name: string | null, value: string | null, size: number, upper: boolean): void {
    if (size > this.#capacity) {
      this.#evict(0);
      return;
    }
    this.#evict(this.#capacity - size);
    if (this.#count > this.#mask) this.#grow();
    const slot = (this.#head + 1) & this.#mask;
    // Fits within the capacity, so #readString kept both strings.
    this.#names[slot] = name!;
    this.#values[slot] = value!;
    this.#upper[slot] = upper;
    this.#head = slot;
    this.#count++;
    this.#size += size;
  }

  /** Drops the oldest entries until the table size is at most `limit`. */
  #evict(limit: number): void {
    while (this.#size > limit) {
      const slot = (this.#head - this.#count + 1) & this.#mask;
      this.#size -= this.#names[slot]!.length + this.#values[slot]!.length + ENTRY_OVERHEAD;
      // Release the strings now rather than when the slot is reused.
      this.#names[slot] = '';
      this.#values[slot] = '';
      this.#count--;
    }
  }

  /** Doubles the ring, copying entries oldest first so indexes stay valid. */
  #grow(): void {
    const length = (this.#mask + 1) * 2;
    const names = new Array<string>(length).fill('');
    const values = new Array<string>(length).fill('');
    const upper = new Array<boolean>(length).fill(false);
    for (let i = 0; i < this.#count; i++) {
      const from = (this.#head - this.#count + 1 + i) & this.#mask;
      names[i] = this.#names[from]!;
      values[i] = this.#values[from]!;
      upper[i] = this.#upper[from]!;
    }
    this.#names = names;
    this.#values = values;
    this.#upper = upper;
    this.#mask = length - 1;
    this.#head = this.#count - 1;
  }
}

/** Name → first static index, for the encoder's indexed-name literals. */
const STATIC_NAME_INDEX = new Map<string, number>();
for (let i = STATIC_COUNT; i >= 1; i--) STATIC_NAME_INDEX.set(STATIC_NAMES[i]!, i);

/** Octets of the §5.1 integer `value` with an N-bit prefix (`mask` = 2^N − 1). */
function integerLength(value: number, mask: number): number {
  if (value < mask) return 1;
  let n = 2;
  for (value -= mask; value >= 128; value = Math.floor(value / 128)) n++;
  return n;
}

/** Writes the §5.1 integer at `pos` with the high bits `flags`; answers the position after it. */
function writeInteger(out: Buffer, pos: number, value: number, mask: number, flags: number): number {
  if (value < mask) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | mask;
  for (value -= mask; value >= 128; value = Math.floor(value / 128)) out[pos++] = (value % 128) | 0x80;
  out[pos++] = value;
  return pos;
}

/** Raw (non-Huffman) string literal: 7-bit length prefix, then the latin1 octets. */
function writeString(out: Buffer, pos: number, s: string): number {
  pos = writeInteger(out, pos, s.length, 0x7f, 0);
  return pos + out.write(s, pos, 'latin1');
}

/**
 * Encodes header fields as "literal header field without indexing" (RFC 7541 §6.2.2), with the
 * static table's index for known names and no Huffman; `:status: 200` is the indexed field 0x88.
 * No encoder state, so a block can be encoded once and reused on any connection. Names must
 * already be lowercase; strings are written as latin1 octets.
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  let length = 0;
  for (const [name, value] of fields) {
    if (name === ':status' && value === '200') {
      length += 1;
      continue;
    }
    const index = STATIC_NAME_INDEX.get(name);
    length += index === undefined ? 1 + integerLength(name.length, 0x7f) + name.length : integerLength(index, 0x0f);
    length += integerLength(value.length, 0x7f) + value.length;
  }
  const out = Buffer.allocUnsafe(length);
  let pos = 0;
  for (const [name, value] of fields) {
    if (name === ':status' && value === '200') {
      out[pos++] = 0x88;
      continue;
    }
    const index = STATIC_NAME_INDEX.get(name);
    if (index === undefined) {
      out[pos++] = 0x00;
      pos = writeString(out, pos, name);
    } else {
      pos = writeInteger(out, pos, index, 0x0f, 0x00);
    }
    pos = writeString(out, pos, value);
  }
  return out;
}
