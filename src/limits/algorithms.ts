/**
 * The two limit algorithms as pure functions of (state, now, limit, cost): no clock, no store.
 * The memory backend keeps the state in a Map; the Redis backend runs the same arithmetic in Lua
 * (`redis-scripts.ts`), fed with the numbers `gcraParams` computes here so both agree to the
 * microsecond.
 */

/** What a backend reports for one hit on one counter. */
export interface HitOutcome {
  allowed: boolean;
  /** Requests that could still be made right now (after this hit when allowed). */
  remaining: number;
  /** Milliseconds until the counter is fully reset (window end; GCRA: bucket full again). */
  resetMs: number;
  /** Milliseconds until a request of the same cost could succeed (0 when allowed). */
  retryAfterMs: number;
}

/** The reference service's fixed window: a counter per window; every hit is counted, even denied ones. */
export interface FixedWindowState {
  windowStart: number;
  count: number;
}

/** Start of the fixed window containing `now` (aligned to the epoch, as the reference service's cache keys). */
export function windowStartOf(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/**
 * One hit on a fixed window. Over the limit when the count after this hit exceeds the limit;
 * the count still grows (INCRBY semantics), so a client hammering a full window stays limited.
 */
export function fixedWindowHit(state: FixedWindowState | undefined, now: number, limit: number, windowMs: number, cost: number): { state: FixedWindowState; outcome: HitOutcome } {
  const windowStart = windowStartOf(now, windowMs);
  const before = state && state.windowStart === windowStart ? state.count : 0;
  return { state: { windowStart, count: before + cost }, outcome: fixedWindowOutcome(before + cost, now, limit, windowMs) };
}

/** The outcome of a fixed window whose count after this hit is `after` (shared with the Redis backend). */
export function fixedWindowOutcome(after: number, now: number, limit: number, windowMs: number): HitOutcome {
  const resetMs = windowStartOf(now, windowMs) + windowMs - now;
  const allowed = after <= limit;
  return { allowed, remaining: allowed ? limit - after : 0, resetMs, retryAfterMs: allowed ? 0 : resetMs };
}

/**
 * GCRA (the generic cell rate algorithm, a token bucket without a refill timer): the state is the
 * theoretical arrival time (TAT) in integer microseconds. A full bucket holds `limit` requests and
 * refills one every `windowMs / limit`, so a burst of `limit` is allowed and then requests are
 * spread evenly, never `2 × limit` at a window edge as with fixed windows.
 */
export interface GcraParams {
  /** Microseconds between two requests at the sustained rate. */
  intervalUs: number;
  /** Bucket depth in microseconds (`limit × intervalUs`). */
  burstUs: number;
}

export function gcraParams(limit: number, windowMs: number): GcraParams {
  const intervalUs = Math.max(1, Math.floor((windowMs * 1000) / Math.max(1, limit)));
  return { intervalUs, burstUs: intervalUs * limit };
}

/** One hit. `tatUs` undefined means a full bucket. A denied hit leaves the state unchanged. */
export function gcraHit(tatUs: number | undefined, now: number, limit: number, windowMs: number, cost: number): { tatUs: number | undefined; outcome: HitOutcome } {
  if (limit <= 0) return { tatUs, outcome: { allowed: false, remaining: 0, resetMs: windowMs, retryAfterMs: windowMs } };
  // gcraParams inlined: this is the in-memory hot path (no intermediate object).
  const intervalUs = Math.max(1, Math.floor((windowMs * 1000) / limit));
  const burstUs = intervalUs * limit;
  const nowUs = now * 1000;
  const tat = Math.max(tatUs ?? nowUs, nowUs);
  const next = tat + cost * intervalUs;
  if (next - nowUs > burstUs) {
    return { tatUs, outcome: gcraOutcome(false, tat, next, nowUs, intervalUs, burstUs) };
  }
  return { tatUs: next, outcome: gcraOutcome(true, tat, next, nowUs, intervalUs, burstUs) };
}

/** Outcome from TAT before/after (shared with the Redis backend, whose script returns them). */
export function gcraOutcome(allowed: boolean, tatUs: number, nextUs: number, nowUs: number, intervalUs: number, burstUs: number): HitOutcome {
  const held = (allowed ? nextUs : tatUs) - nowUs;
  return {
    allowed,
    remaining: Math.max(0, Math.floor((burstUs - held) / intervalUs)),
    resetMs: Math.ceil(held / 1000),
    retryAfterMs: allowed ? 0 : Math.ceil((nextUs - burstUs - nowUs) / 1000),
  };
}
