/**
 * IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-09: `RateLimit-Policy` and
 * `RateLimit` as structured-field lists) plus `Retry-After` (pure).
 *
 * @example
 *   RateLimit-Policy: "orders-per-caller";q=100;w=1
 *   RateLimit: "orders-per-caller";r=0;t=1
 *   Retry-After: 1
 */

/** One limit as the headers describe it. */
export interface HeaderLimit {
  /** Policy name (an sf-string). */
  name: string;
  quota: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
}

export interface HeaderPair {
  name: string;
  value: string;
}

/** Structured-field string: quotes and backslashes escaped; other non-printable ASCII dropped. */
export function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Whole seconds, rounded up, never negative (headers are integers). */
export function ceilSeconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/**
 * Headers for the given limits (the most constraining first, as the draft recommends when a
 * client can only honour one). Empty list ⇒ no headers.
 */
export function rateLimitHeaders(limits: readonly HeaderLimit[]): HeaderPair[] {
  if (limits.length === 0) return [];
  const sorted = [...limits].sort((a, b) => a.remaining - b.remaining);
  return [
    { name: 'ratelimit-policy', value: sorted.map((l) => `${sfString(l.name)};q=${l.quota};w=${l.windowSeconds}`).join(', ') },
    { name: 'ratelimit', value: sorted.map((l) => `${sfString(l.name)};r=${l.remaining};t=${l.resetSeconds}`).join(', ') },
  ];
}

/** `Retry-After` in delta-seconds, at least 1 (0 would invite an immediate retry storm). */
export function retryAfterHeader(retryAfterMs: number): HeaderPair {
  return { name: 'retry-after', value: String(Math.max(1, ceilSeconds(retryAfterMs))) };
}
