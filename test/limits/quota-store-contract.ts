/** The contract every QuotaStore passes (SQLite, Redis, PostgreSQL). */
import { expect, it } from 'vitest';
import type { QuotaCounterRef, QuotaStore } from '../../src/limits/quota/store.ts';

export function quotaStoreContract(make: () => { store: QuotaStore; prefix: string }): void {
  const ref = (prefix: string, subject: string, period = '2026-01-01'): QuotaCounterRef => ({ policy: `${prefix}shop/q`, subject, period, expiresAt: Date.UTC(2030, 0, 1) });

  it('consumes up to the limit, then denies without consuming', async () => {
    const { store, prefix } = make();
    const r = ref(prefix, 'alice');
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await store.consume(r, 3, 1));
    expect(got).toEqual([{ allowed: true, used: 1 }, { allowed: true, used: 2 }, { allowed: true, used: 3 }, { allowed: false, used: 3 }]);
    expect(await store.used(r)).toBe(3);
  });

  it('denies a cost larger than what is left, leaving the rest usable', async () => {
    const { store, prefix } = make();
    const r = ref(prefix, 'bob');
    expect(await store.consume(r, 10, 8)).toEqual({ allowed: true, used: 8 });
    expect(await store.consume(r, 10, 3)).toEqual({ allowed: false, used: 8 });
    expect(await store.consume(r, 10, 2)).toEqual({ allowed: true, used: 10 });
    expect(await store.consume(ref(prefix, 'new'), 1, 2)).toEqual({ allowed: false, used: 0 });
  });

  it('counts subjects and periods separately', async () => {
    const { store, prefix } = make();
    await store.consume(ref(prefix, 'carol', '2026-01-01'), 5, 5);
    expect(await store.used(ref(prefix, 'carol', '2026-01-02'))).toBe(0);
    expect(await store.used(ref(prefix, 'dave', '2026-01-01'))).toBe(0);
  });

  it('adjusts atomically: reset, set, add (never below zero), reporting before and after', async () => {
    const { store, prefix } = make();
    const r = ref(prefix, 'erin');
    await store.consume(r, 100, 40);
    expect(await store.adjust(r, { action: 'add', delta: -15 })).toEqual({ before: 40, after: 25 });
    expect(await store.adjust(r, { action: 'set', used: 90 })).toEqual({ before: 25, after: 90 });
    expect(await store.consume(r, 100, 11)).toEqual({ allowed: false, used: 90 });
    expect(await store.adjust(r, { action: 'reset' })).toEqual({ before: 90, after: 0 });
    expect(await store.adjust(r, { action: 'add', delta: -5 })).toEqual({ before: 0, after: 0 });
    expect(await store.adjust(ref(prefix, 'fresh'), { action: 'add', delta: 3 })).toEqual({ before: 0, after: 3 });
  });

  it('is exact under concurrency: 60 simultaneous requests on a quota of 25 admit 25', async () => {
    const { store, prefix } = make();
    const r = ref(prefix, 'conc');
    const results = await Promise.all(Array.from({ length: 60 }, () => store.consume(r, 25, 1)));
    expect(results.filter((x) => x.allowed)).toHaveLength(25);
    expect(await store.used(r)).toBe(25);
  });
}
