/**
 * The contract every LimitBackend passes (memory, Redis): same arithmetic, per-key counters,
 * several counters per call, and exactness under concurrency.
 */
import { expect, it } from 'vitest';
import type { LimitBackend, LimitHit } from '../../src/limits/backend.ts';

const T0 = Date.UTC(2026, 0, 1, 0, 0, 0);

export function limitBackendContract(make: () => { backend: LimitBackend; prefix: string }): void {
  const hit = async (b: LimitBackend, h: LimitHit, now: number) => (await b.hit([h], now))[0]!;

  it('fixed window: allows the limit, denies the next, resets at the next window', async () => {
    const { backend, prefix } = make();
    const h: LimitHit = { scope: `${prefix}fw`, value: 'v', algorithm: 'fixed-window', limit: 3, windowMs: 60_000, cost: 1 };
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await hit(backend, h, T0 + 10_000)).allowed);
    expect(got).toEqual([true, true, true, false]);
    expect(await hit(backend, h, T0 + 10_000)).toMatchObject({ allowed: false, remaining: 0, resetMs: 50_000 });
    expect(await hit(backend, h, T0 + 60_000)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('gcra: burst of the limit, then one per interval', async () => {
    const { backend, prefix } = make();
    const h: LimitHit = { scope: `${prefix}g`, value: 'v', algorithm: 'gcra', limit: 5, windowMs: 1000, cost: 1 };
    const got = [];
    for (let i = 0; i < 6; i++) got.push((await hit(backend, h, T0)).allowed);
    expect(got).toEqual([true, true, true, true, true, false]);
    expect(await hit(backend, h, T0 + 199)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    expect(await hit(backend, h, T0 + 200)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('keeps counters per key and applies several counters in one call', async () => {
    const { backend, prefix } = make();
    const a: LimitHit = { scope: `${prefix}a`, value: 'v', algorithm: 'gcra', limit: 1, windowMs: 1000, cost: 1 };
    const b: LimitHit = { scope: `${prefix}b`, value: 'v', algorithm: 'fixed-window', limit: 2, windowMs: 1000, cost: 1 };
    expect((await backend.hit([a, b], T0)).map((o) => o.allowed)).toEqual([true, true]);
    expect((await backend.hit([a, b], T0)).map((o) => o.allowed)).toEqual([false, true]);
    expect((await backend.hit([a, b], T0)).map((o) => o.allowed)).toEqual([false, false]);
  });

  it('charges the cost (hits_addend)', async () => {
    const { backend, prefix } = make();
    const h: LimitHit = { scope: `${prefix}cost`, value: 'v', algorithm: 'fixed-window', limit: 10, windowMs: 1000, cost: 7 };
    expect(await hit(backend, h, T0)).toMatchObject({ allowed: true, remaining: 3 });
    expect((await hit(backend, h, T0)).allowed).toBe(false);
  });

  it('is exact under concurrency: 200 simultaneous checks on a limit of 50 admit exactly 50', async () => {
    const { backend, prefix } = make();
    for (const algorithm of ['gcra', 'fixed-window'] as const) {
      const h: LimitHit = { scope: `${prefix}conc-${algorithm}`, value: 'v', algorithm, limit: 50, windowMs: 3_600_000, cost: 1 };
      const results = await Promise.all(Array.from({ length: 200 }, () => hit(backend, h, T0)));
      expect(results.filter((r) => r.allowed)).toHaveLength(50);
    }
  });
}
