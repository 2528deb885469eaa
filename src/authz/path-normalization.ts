/**
 * Request paths as Envoy rewrites them under each of Istio's `MeshConfig.pathNormalization` options
 * (the generated listeners set the same options, so meshward matches the path the backend gets),
 * plus the strictest reading a backend might make, which DENY rules also match (pure).
 *
 * Envoy, in order: `path_with_escaped_slashes_action` (DECODE_AND_MERGE_SLASHES: `%2F`/`%5C`
 * unescaped), `normalize_path` (`..;`/`.;` segments lose their parameters, `\` → `/`, escapes of
 * unreserved characters decoded once, other escapes kept as sent, `.`/`..` resolved per RFC 3986),
 * then `merge_slashes`. Paths are never lower-cased (Envoy and Istio do not).
 */
import type { ResolvedMeshSpec } from '../config/index.ts';
import { AuthzBadRequestError } from './errors.ts';

export type PathNormalization = ResolvedMeshSpec['pathNormalization']['normalization'];

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** What normalization or another reading could change (`%`, `;`, `\\`, `//`, `/.`), or a raw NUL. */
const SPECIAL = /[;%\\\0]|\/[/.]/;

/**
 * True when no option changes `path` and no other reading exists: the common case, decided with
 * one regular expression test so ordinary requests pay nothing more.
 */
export function isPlainPath(path: string): boolean {
  return path.startsWith('/') && !SPECIAL.test(path);
}

/** `%2F`/`%5C` in any case → `/` and `\` (Envoy's UNESCAPE_AND_FORWARD). */
function unescapeSlashes(p: string): string {
  return p.includes('%') ? p.replace(/%(2f|5c)/gi, (m) => (m[1] === '2' ? '/' : '\\')) : p;
}

/** `%41` → `A`, `%2e` → `.`; any other escape kept exactly as sent (no double decoding). */
function decodeUnreserved(p: string): string {
  if (!p.includes('%')) return p;
  return p.replace(/%([0-9a-fA-F]{2})/g, (all, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : all;
  });
}

/** `..;x` → `..`, `.;x` → `.` (Envoy strips parameters from dot segments before resolving them). */
function stripDotSegmentParameters(p: string): string {
  if (!p.includes('.;')) return p;
  return p.split('/').map((s) => (s.startsWith('..;') ? '..' : s.startsWith('.;') ? '.' : s)).join('/');
}

/** Every `;` parameter removed from every segment (`/a;x/b;y=1` → `/a/b`), as servlet containers read paths. */
function stripPathParameters(p: string): string {
  if (!p.includes(';')) return p;
  return p.split('/').map((s) => {
    const semi = s.indexOf(';');
    return semi < 0 ? s : s.slice(0, semi);
  }).join('/');
}

/** RFC 3986 remove_dot_segments on an absolute path; empty segments are kept (`/a//../b` → `/a/b`). */
function removeDotSegments(p: string): string {
  if (!p.includes('/.')) return p;
  const segments = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '..') out.pop();
    if (s === '.' || s === '..') {
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  return `/${out.join('/')}`;
}

function mergeSlashes(p: string): string {
  return p.includes('//') ? p.replace(/\/{2,}/g, '/') : p;
}

/** Envoy's `normalize_path` (RFC 3986 canonicalization, Chromium's rules). */
function canonicalize(p: string): string {
  let out = stripDotSegmentParameters(p);
  if (out.includes('\\')) out = out.replace(/\\/g, '/');
  return removeDotSegments(decodeUnreserved(out));
}

function assertNoNul(path: string): void {
  if (path.includes('\0') || /%00/.test(path)) throw new AuthzBadRequestError('the request path contains a NUL byte');
}

/**
 * The path (without query or fragment) as Envoy forwards it under `mode`. A NUL byte, raw or
 * `%00`, is rejected in every mode (Istio answers 400).
 * @example normalizeRequestPath('/a/..%2fb\\c', 'BASE') === '/a/..%2fb/c'
 */
export function normalizeRequestPath(path: string, mode: PathNormalization = 'BASE'): string {
  assertNoNul(path);
  const p = path.startsWith('/') ? path : `/${path}`;
  if (mode === 'NONE' || !SPECIAL.test(p)) return p;
  const canonical = canonicalize(mode === 'DECODE_AND_MERGE_SLASHES' ? unescapeSlashes(p) : p);
  return mode === 'BASE' ? canonical : mergeSlashes(canonical);
}

/**
 * The most decoded reading a backend could make of `path`: escaped slashes decoded, `\` as `/`,
 * `;` parameters removed from every segment, dot segments resolved, slashes merged.
 */
export function strictestReading(path: string): string {
  const p = path.startsWith('/') ? path : `/${path}`;
  const decoded = decodeUnreserved(unescapeSlashes(p).replace(/\\/g, '/'));
  return mergeSlashes(removeDotSegments(stripPathParameters(decoded)));
}

/**
 * Readings of `path` other than `normalized` that DENY rules must also match (a request denied under
 * any reading is denied); undefined for the common path with nothing ambiguous in it.
 */
export function otherReadings(path: string, normalized: string): string[] | undefined {
  if (!SPECIAL.test(path)) return undefined;
  const strict = strictestReading(path);
  return strict === normalized ? undefined : [strict];
}
