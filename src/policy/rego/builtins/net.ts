/** net.cidr_* built-ins with Go's net package parsing and printing (RFC 5952 for IPv6). */
import { readFileSync } from 'node:fs';
import { isObject, isSet, objectEntries, RegoSet, type Value } from '../value.ts';
import { fail, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { BuiltinError } from './errors.ts';
import { T_ANY, T_BOOLEAN, T_STRING, tArray, tSet, tUnion } from './types.ts';

interface Ip {
  v6: boolean;
  /** Address as an unsigned integer (32 or 128 bits). */
  n: bigint;
}

interface Cidr extends Ip {
  bits: number;
}

function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseIPv6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined;
  let tail4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail4 = parseIPv4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tail4 !== undefined) n = (n & ~0xffffffffn) | tail4;
  return n;
}

export function parseIp(s: string): Ip | undefined {
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return { v6: false, n: v4 };
  if (!s.includes(':')) return undefined;
  const v6 = parseIPv6(s);
  if (v6 === undefined) return undefined;
  // IPv4-mapped addresses behave as IPv4, as in Go.
  if (v6 >> 32n === 0xffffn) return { v6: false, n: v6 & 0xffffffffn };
  return { v6: true, n: v6 };
}

function width(ip: Ip): number {
  return ip.v6 ? 128 : 32;
}

function mask(bits: number, w: number): bigint {
  return ((1n << BigInt(w)) - 1n) ^ ((1n << BigInt(w - bits)) - 1n);
}

/** Go's net.ParseCIDR; the address is masked to the network. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9]\d*)$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const w = s.slice(0, slash).includes(':') && !ip.v6 ? 128 : width(ip);
  if (bits > w) return undefined;
  const effective = w === 128 && !ip.v6 ? Math.max(0, bits - 96) : bits;
  return { v6: ip.v6, n: ip.n & mask(effective, width(ip)), bits: effective };
}

const cidrCache = new Map<string, Cidr>();

/** Parsed CIDR operand; policies repeat the same few literals, so parses are cached (bounded). */
function cidrArg(s: string): Cidr {
  let c = cidrCache.get(s);
  if (c) return c;
  c = parseCidr(s);
  if (!c) fail(`invalid CIDR address: ${s}`);
  if (cidrCache.size >= 4096) cidrCache.clear();
  cidrCache.set(s, c);
  return c;
}

function range(c: Cidr): [bigint, bigint] {
  const w = BigInt(width(c));
  const size = 1n << (w - BigInt(c.bits));
  return [c.n, c.n + size - 1n];
}

export function formatIp(ip: Ip): string {
  if (!ip.v6) return [24n, 16n, 8n, 0n].map((s) => String((ip.n >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.n >> BigInt(112 - i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function formatCidr(c: Cidr): string {
  return `${formatIp(c)}/${c.bits}`;
}

/** A CIDR or a bare IP (a single-address range). */
function cidrOrIp(s: string): [Ip, bigint, bigint] | undefined {
  const ip = parseIp(s);
  if (ip) return [ip, ip.n, ip.n];
  const c = parseCidr(s);
  if (!c) return undefined;
  const [lo, hi] = range(c);
  return [c, lo, hi];
}

/** IPv4 dotted quad as a number (no bigint), or undefined; the common ext_authz case. */
function ipv4Number(s: string): number | undefined {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + part;
}

const v4Ranges = new WeakMap<Cidr, [number, number]>();

function contains(cidr: string, other: string): boolean {
  const c = cidrArg(cidr);
  if (!c.v6) {
    const ip = ipv4Number(other);
    if (ip !== undefined) {
      let r = v4Ranges.get(c);
      if (!r) {
        const [lo, hi] = range(c);
        v4Ranges.set(c, (r = [Number(lo), Number(hi)]));
      }
      return ip >= r[0] && ip <= r[1];
    }
  }
  const o = cidrOrIp(other);
  if (!o) fail(`invalid CIDR address: ${other}`);
  if (o[0].v6 !== c.v6) return false;
  const [lo, hi] = range(c);
  return o[1] >= lo && o[2] <= hi;
}

function intersects(a: string, b: string): boolean {
  const x = cidrArg(a);
  const y = cidrArg(b);
  if (x.v6 !== y.v6) return false;
  const [xl, xh] = range(x);
  const [yl, yh] = range(y);
  return xl <= yh && yl <= xh;
}

function expand(s: string): RegoSet {
  const c = cidrArg(s);
  const [lo, hi] = range(c);
  if (hi - lo > 65535n) fail(`CIDR ${s} expands to more than 65536 addresses`);
  const out = new RegoSet();
  for (let n = lo; n <= hi; n++) out.add(formatIp({ v6: c.v6, n }));
  return out;
}

/** Go's IP.DefaultMask: classful prefix for a bare IPv4 address. */
function defaultBits(n: bigint): number {
  const first = Number(n >> 24n);
  return first < 0x80 ? 8 : first < 0xc0 ? 16 : 24;
}

/** Minimal CIDR list covering [lo, hi]. */
function rangeToCidrs(lo: bigint, hi: bigint, v6: boolean): Cidr[] {
  const w = v6 ? 128 : 32;
  const out: Cidr[] = [];
  while (lo <= hi) {
    let bits = w;
    while (bits > 0) {
      const size = 1n << BigInt(w - bits + 1);
      if (lo % size !== 0n || lo + size - 1n > hi) break;
      bits--;
    }
    out.push({ v6, n: lo, bits });
    lo += 1n << BigInt(w - bits);
  }
  return out;
}

function merge(items: readonly Value[]): Value[] {
  const byFamily: Record<'v4' | 'v6', Array<[bigint, bigint]>> = { v4: [], v6: [] };
  for (const item of items) {
    if (typeof item !== 'string') throw operandTypeError(1, item, 'string');
    let c: Cidr | undefined;
    if (item.includes('/')) c = parseCidr(item);
    else {
      const ip = parseIp(item);
      if (ip?.v6) throw new BuiltinError('IPv6 invalid: needs prefix length');
      if (ip) c = { v6: false, n: ip.n & mask(defaultBits(ip.n), 32), bits: defaultBits(ip.n) };
    }
    if (!c) throw new BuiltinError(`invalid CIDR address: ${item}`);
    byFamily[c.v6 ? 'v6' : 'v4'].push(range(c));
  }
  const out: Value[] = [];
  for (const fam of ['v4', 'v6'] as const) {
    const ranges = byFamily[fam].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let cur: [bigint, bigint] | undefined;
    const merged: Array<[bigint, bigint]> = [];
    for (const r of ranges) {
      if (cur && r[0] <= cur[1] + 1n) {
        if (r[1] > cur[1]) cur[1] = r[1];
      }
      else merged.push((cur = [r[0], r[1]]));
    }
    for (const [lo, hi] of merged) for (const c of rangeToCidrs(lo, hi, fam === 'v6')) out.push(formatCidr(c));
  }
  return out;
}

/** Elements of a cidr_contains_matches operand as [key, address] pairs. */
function matchItems(v: Value, pos: number): Array<[Value, string]> {
  const element = (key: Value, x: Value): [Value, string] => {
    if (typeof x === 'string') return [key, x];
    if (Array.isArray(x) && x.length > 0 && typeof x[0] === 'string') return [key, x[0]];
    throw new BuiltinError(`operand ${pos}: element must be string or non-empty array`);
  };
  if (typeof v === 'string') return [[v, v]];
  if (Array.isArray(v)) return v.map((x, i) => element(i, x));
  if (isSet(v)) return v.values().map((x) => element(x, x));
  if (isObject(v)) return objectEntries(v).map(([k, x]) => element(k, x));
  throw operandTypeError(pos, v, 'string', 'array', 'set', 'object');
}

function containsMatches(args: Value[]): RegoSet {
  const cidrs = matchItems(args[0]!, 1);
  const addrs = matchItems(args[1]!, 2);
  const out = new RegoSet();
  for (const [ck, c] of cidrs) for (const [ak, a] of addrs) if (contains(c, a)) out.add([ck, ak]);
  return out;
}

/** Names from /etc/hosts (read once): the only names resolved without a DNS query. */
let hostsTable: Map<string, string[]> | undefined;

function hosts(): Map<string, string[]> {
  if (hostsTable) return hostsTable;
  hostsTable = new Map();
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    // No hosts file: only literals resolve.
  }
  for (const line of text.split('\n')) {
    const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    const ip = addr ? parseIp(addr) : undefined;
    if (!ip) continue;
    for (const n of names) {
      const key = n.toLowerCase();
      hostsTable.set(key, [...(hostsTable.get(key) ?? []), formatIp(ip)]);
    }
  }
  return hostsTable;
}

/**
 * net.lookup_ip_addr without network access: IP literals resolve to themselves (as Go does) and
 * names from /etc/hosts to their addresses; any other name is an error, because a DNS query per
 * decision is slow and leaks what is being authorized.
 */
function lookupIpAddr(name: string): RegoSet {
  const literal = parseIp(name);
  if (literal) return new RegoSet([formatIp(literal)]);
  const found = hosts().get(name.toLowerCase());
  if (found) return new RegoSet(found);
  throw new BuiltinError(`lookup ${name}: DNS lookups are disabled in meshward policies`);
}

const T_CIDR_COLL = tUnion(T_STRING, tArray(), tSet(), { kind: 'object', key: T_ANY, value: T_ANY });

export const NET: readonly BuiltinDefinition[] = [
  builtin('net.cidr_contains', [T_STRING, T_STRING], T_BOOLEAN, (a) => contains(stringArg(a, 0), stringArg(a, 1))),
  builtin('net.cidr_intersects', [T_STRING, T_STRING], T_BOOLEAN, (a) => intersects(stringArg(a, 0), stringArg(a, 1))),
  builtin('net.cidr_is_valid', [T_STRING], T_BOOLEAN, (a) => typeof a[0] === 'string' && parseCidr(a[0]) !== undefined),
  builtin('net.cidr_expand', [T_STRING], tSet(T_STRING), (a) => expand(stringArg(a, 0))),
  builtin('net.cidr_merge', [tUnion(tArray(T_STRING), tSet(T_STRING))], tSet(T_STRING), (a) => {
    const v = a[0]!;
    if (Array.isArray(v)) return new RegoSet(merge(v));
    if (isSet(v)) return new RegoSet(merge(v.values()));
    throw operandTypeError(1, v, 'array', 'set');
  }),
  builtin('net.lookup_ip_addr', [T_STRING], tSet(T_STRING), (a) => lookupIpAddr(stringArg(a, 0)), { nondeterministic: true }),
  builtin('net.cidr_contains_matches', [T_CIDR_COLL, T_CIDR_COLL], tSet(tArray()), containsMatches),
];
