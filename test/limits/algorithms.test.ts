import { describe, expect, it } from 'vitest';
import { type FixedWindowState, fixedWindowHit, gcraHit, gcraParams } from '../../src/limits/algorithms.ts';

const SECOND = 1000;
const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

function fixedRun(times: number[], limit: number, windowMs: number): boolean[] {
  let state: FixedWindowState | undefined;
  return times.map((t) => {
    const r = fixedWindowHit(state, t, limit, windowMs, 1);
    state = r.state;
    return r.outcome.allowed;
  });
}

function gcraRun(times: number[], limit: number, windowMs: number, cost = 1): boolean[] {
  let tat: number | undefined;
  return times.map((t) => {
    const r = gcraHit(tat, t, limit, windowMs, cost);
    tat = r.tatUs;
    return r.outcome.allowed;
  });
}

describe('fixed window (reference-service compatible)', () => {
  it('allows exactly requests_per_unit in a window and denies the next one', () => {
    const got = fixedRun(Array.from({ length: 6 }, () => T0 + 500), 5, SECOND);
    expect(got).toEqual([true, true, true, true, true, false]);
  });

  it('starts a fresh count exactly at the window edge, not a millisecond before', () => {
    const full = Array.from({ length: 5 }, () => T0);
    expect(fixedRun([...full, T0 + 999], 5, SECOND).at(-1)).toBe(false);
    expect(fixedRun([...full, T0 + 1000], 5, SECOND).at(-1)).toBe(true);
  });

  it('aligns windows to the epoch like the reference cache keys (a burst straddling an edge gets 2x)', () => {
    const got = fixedRun([...Array.from({ length: 3 }, () => T0 + 59_999), ...Array.from({ length: 3 }, () => T0 + 60_000)], 3, 60 * SECOND);
    expect(got).toEqual([true, true, true, true, true, true]);
  });

  it('counts denied hits too (INCRBY semantics) and reports remaining and reset', () => {
    let state: FixedWindowState | undefined;
    for (let i = 0; i < 4; i++) state = fixedWindowHit(state, T0 + 250, 3, SECOND, 1).state;
    expect(state!.count).toBe(4);
    const ok = fixedWindowHit(undefined, T0 + 250, 3, SECOND, 1).outcome;
    expect(ok).toEqual({ allowed: true, remaining: 2, resetMs: 750, retryAfterMs: 0 });
    const over = fixedWindowHit(state, T0 + 250, 3, SECOND, 1).outcome;
    expect(over).toEqual({ allowed: false, remaining: 0, resetMs: 750, retryAfterMs: 750 });
  });

  it('denies everything with requests_per_unit 0', () => {
    expect(fixedRun([T0, T0 + 5000], 0, SECOND)).toEqual([false, false]);
  });
});

describe('GCRA (smooth, the default)', () => {
  it('allows a burst of exactly the limit from a full bucket', () => {
    expect(gcraRun(Array.from({ length: 11 }, () => T0), 10, SECOND)).toEqual([...Array(10).fill(true), false]);
  });

  it('then admits one request per emission interval, not a whole new window at the edge', () => {
    const burst = Array.from({ length: 10 }, () => T0);
    // 10/s ⇒ one every 100 ms. At +99 ms nothing has refilled; at +100 ms exactly one has.
    expect(gcraRun([...burst, T0 + 99], 10, SECOND).at(-1)).toBe(false);
    expect(gcraRun([...burst, T0 + 100, T0 + 100], 10, SECOND).slice(-2)).toEqual([true, false]);
    // At the one-second edge a fixed window would allow 10 more; GCRA allows what refilled: 10 — but spread:
    const atEdge = gcraRun([...burst, ...Array.from({ length: 11 }, () => T0 + 1000)], 10, SECOND).slice(10);
    expect(atEdge.filter(Boolean)).toHaveLength(10);
  });

  it('never lets more than limit + elapsed/interval through over any span (smoothness)', () => {
    const limit = 20;
    const windowMs = SECOND;
    const { intervalUs } = gcraParams(limit, windowMs);
    let tat: number | undefined;
    const allowedAt: number[] = [];
    // A client hammering every 7 ms for 5 s.
    for (let t = T0; t < T0 + 5000; t += 7) {
      const r = gcraHit(tat, t, limit, windowMs, 1);
      tat = r.tatUs;
      if (r.outcome.allowed) allowedAt.push(t);
    }
    for (let i = 0; i < allowedAt.length; i++) {
      for (let j = i; j < allowedAt.length; j++) {
        const span = (allowedAt[j]! - allowedAt[i]!) * 1000;
        expect(j - i + 1).toBeLessThanOrEqual(limit + Math.floor(span / intervalUs));
      }
    }
    // Sustained rate: after the initial burst, about limit per second.
    const lastSecond = allowedAt.filter((t) => t >= T0 + 4000).length;
    expect(lastSecond).toBeGreaterThanOrEqual(limit - 1);
    expect(lastSecond).toBeLessThanOrEqual(limit + 1);
  });

  it('does not consume on denial and says when a retry succeeds', () => {
    let tat: number | undefined;
    for (let i = 0; i < 4; i++) tat = gcraHit(tat, T0, 4, SECOND, 1).tatUs;
    const denied = gcraHit(tat, T0, 4, SECOND, 1);
    expect(denied.tatUs).toBe(tat);
    expect(denied.outcome).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 250 });
    expect(gcraHit(tat, T0 + 250, 4, SECOND, 1).outcome.allowed).toBe(true);
  });

  it('reports remaining tokens and time until the bucket is full', () => {
    const first = gcraHit(undefined, T0, 4, SECOND, 1).outcome;
    expect(first).toEqual({ allowed: true, remaining: 3, resetMs: 250, retryAfterMs: 0 });
  });

  it('charges hits_addend as that many requests', () => {
    expect(gcraRun([T0, T0], 10, SECOND, 6)).toEqual([true, false]);
  });
});
