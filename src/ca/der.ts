/**
 * The little DER that X.509 needs (pure): an encoder for building certificates and a reader for
 * finding fields in certificates and CSRs. Not a general ASN.1 library on purpose: every shape it
 * writes is checked against @peculiar/x509 and openssl in the tests.
 */
import { boundedMemo } from '../lib/bounded-memo.ts';

export const TAG = {
  BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06,
  UTF8_STRING: 0x0c, PRINTABLE_STRING: 0x13, IA5_STRING: 0x16, UTC_TIME: 0x17, GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30, SET: 0x31,
} as const;

/** Length octets of a definite-length DER header. */
export function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  if (length < 0x10000) return Buffer.from([0x82, length >> 8, length & 0xff]);
  if (length < 0x1000000) return Buffer.from([0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  throw new Error(`DER length ${length} too large`);
}

export function headerLength(length: number): number {
  return length < 0x80 ? 2 : length < 0x100 ? 3 : length < 0x10000 ? 4 : 5;
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), lengthOctets(body.length), body]);
}

export const seq = (...parts: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...parts);
export const set = (...parts: Buffer[]): Buffer => tlv(TAG.SET, ...parts);
export const octetString = (value: Buffer): Buffer => tlv(TAG.OCTET_STRING, value);
export const bitString = (value: Buffer, unusedBits = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unusedBits]), value);
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
export const NULL = Buffer.from([TAG.NULL, 0]);
export const TRUE = Buffer.from([TAG.BOOLEAN, 1, 0xff]);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal encoding). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  return trimmed[0]! & 0x80 ? tlv(TAG.INTEGER, Buffer.from([0]), trimmed) : tlv(TAG.INTEGER, trimmed);
}

export function smallInteger(n: number): Buffer {
  if (n < 0 || n > 0x7fffffff) throw new Error('smallInteger out of range');
  const bytes: number[] = [];
  do {
    bytes.unshift(n & 0xff);
    n >>>= 8;
  } while (n > 0);
  return unsignedInteger(Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(bytes));
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5); whole seconds. */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${pad2(y % 100)}${rest}`, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'latin1'));
}

/** Writes UTCTime digits for `ms` into `buf` at `at` (13 bytes), for patching templates in place. */
export function writeUtcTimeDigits(buf: Buffer, at: number, ms: number): void {
  const d = new Date(ms);
  twoDigits(buf, at, d.getUTCFullYear() % 100);
  twoDigits(buf, at + 2, d.getUTCMonth() + 1);
  twoDigits(buf, at + 4, d.getUTCDate());
  twoDigits(buf, at + 6, d.getUTCHours());
  twoDigits(buf, at + 8, d.getUTCMinutes());
  twoDigits(buf, at + 10, d.getUTCSeconds());
  buf[at + 12] = 0x5a; // 'Z'
}

function twoDigits(buf: Buffer, at: number, n: number): void {
  buf[at] = 0x30 + Math.floor(n / 10);
  buf[at + 1] = 0x30 + (n % 10);
}

// ---- reading ----

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  valueStart: number;
  /** Offset just past the content. */
  end: number;
}

export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER truncated');
  const tag = buf[offset]!;
  let length = buf[offset + 1]!;
  let p = offset + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) throw new Error('DER length form unsupported');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++]!;
  }
  if (p + length > buf.length) throw new Error('DER truncated');
  return { tag, start: offset, valueStart: p, end: p + length };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.valueStart; p < parent.end;) {
    const t = readTlv(buf, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

export const raw = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);
export const value = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.valueStart, t.end);

export function decodeOid(content: Buffer): string {
  const arcs: number[] = [Math.floor(content[0]! / 40), content[0]! % 40];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    v = v * 128 + (content[i]! & 0x7f);
    if (!(content[i]! & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  return arcs.join('.');
}

// PEM block patterns by label source: built once (matchAll works on a copy, so sharing is safe).
const pemPattern = boundedMemo(64, (source: string) => new RegExp(`-----BEGIN (${source})-----([\\s\\S]*?)-----END \\1-----`, 'g'));

export function pemToDer(pem: string, label: string | RegExp): Buffer[] {
  const re = pemPattern(typeof label === 'string' ? label : label.source);
  // Node's base64 decoder skips line breaks and other whitespace itself.
  return [...pem.matchAll(re)].map((m) => Buffer.from(m[2]!, 'base64'));
}

export function derToPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
