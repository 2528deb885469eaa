import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { LimitsBackendUnavailableError } from '../../src/limits/errors.ts';
import { periodBounds } from '../../src/limits/quota/periods.ts';
import { compileQuotaPolicies } from '../../src/limits/quota/policies.ts';
import { QuotaService } from '../../src/limits/quota/service.ts';
import { SqliteQuotaStore, openQuotaDatabase } from '../../src/limits/quota/sqlite.ts';
import type { QuotaStore } from '../../src/limits/quota/store.ts';
import type { LimitRequestAttributes } from '../../src/limits/request-descriptors.ts';
import { snapshotOf } from './helpers.ts';
import { quotaStoreContract } from './quota-store-contract.ts';

const dirs: string[] = [];
const stores: SqliteQuotaStore[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-quota-'));
  dirs.push(d);
  return d;
}
function sqliteStore(dir = tempDir()): SqliteQuotaStore {
  const s = new SqliteQuotaStore(openQuotaDatabase(dir));
  stores.push(s);
  return s;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const QUOTAS = `apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: daily, namespace: shop }
spec:
  subject: { from: requestPrincipal }
  limit: 3
  period: day
  match: { pathPrefix: /api/, methods: [POST] }
---
apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: keys, namespace: shop }
spec:
  subject: { from: header, header: X-API-Key }
  limit: 2
  period: month
---
apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: trial, namespace: shop }
spec:
  subject: { from: sourcePrincipal }
  limit: 1
  period: day
  shadowMode: true
`;

function service(store: QuotaStore, clock: FakeClock, log = sqliteStore(), failureMode: 'open' | 'closed' = 'open'): QuotaService {
  const s = new QuotaService({ stores: (k) => (k === 'sqlite' || k === 'auto' ? store : undefined), log, clock, logger: silentLogger(), registry: createRegistry(), failureMode });
  s.setPolicies(compileQuotaPolicies(snapshotOf(QUOTAS)));
  return s;
}

const req = (over: Partial<LimitRequestAttributes> = {}): LimitRequestAttributes => ({ headers: {}, path: '/api/orders', method: 'POST', ...over });

describe('quota periods', () => {
  it('uses UTC calendar days and months', () => {
    const t = Date.UTC(2026, 1, 28, 23, 59, 59, 999);
    expect(periodBounds('day', t)).toEqual({ id: '2026-02-28', start: Date.UTC(2026, 1, 28), end: Date.UTC(2026, 2, 1) });
    expect(periodBounds('month', t)).toEqual({ id: '2026-02', start: Date.UTC(2026, 1, 1), end: Date.UTC(2026, 2, 1) });
    expect(periodBounds('day', t + 1).id).toBe('2026-03-01');
  });
});

describe('SQLite quota store', () => {
  quotaStoreContract(() => ({ store: sqliteStore(), prefix: '' }));

  it('survives a restart: usage written before close is there after reopening', async () => {
    const dir = tempDir();
    const first = sqliteStore(dir);
    const ref = { policy: 'shop/daily', subject: 'a/b', period: '2026-01-01', expiresAt: Date.UTC(2026, 0, 2) };
    await first.consume(ref, 10, 4);
    await first.close();
    const second = sqliteStore(dir);
    expect(await second.used(ref)).toBe(4);
    expect(await second.consume(ref, 10, 6)).toEqual({ allowed: true, used: 10 });
    expect(await second.consume(ref, 10, 1)).toEqual({ allowed: false, used: 10 });
  });

  it('creates the database 0600 in a 0700 folder', () => {
    const dir = path.join(tempDir(), 'limits');
    sqliteStore(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'quotas.db')).mode & 0o777).toBe(0o600);
  });

  it('purges counters of ended periods only', async () => {
    const s = sqliteStore();
    await s.consume({ policy: 'p', subject: 's', period: 'old', expiresAt: 1000 }, 5, 1);
    await s.consume({ policy: 'p', subject: 's', period: 'new', expiresAt: 5000 }, 5, 1);
    expect(s.purgeExpired(2000)).toBe(1);
    expect(await s.used({ policy: 'p', subject: 's', period: 'new', expiresAt: 5000 })).toBe(1);
  });
});

describe('quota service', () => {
  it('counts only matching requests per subject and denies when the budget is spent', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
    const s = service(sqliteStore(), clock);
    const daily = s.policies().find((p) => p.name === 'daily')!;
    const alice = req({ requestPrincipal: 'https://idp/alice' });
    expect(await s.consume(daily, { ...alice, method: 'GET' })).toBeUndefined();
    expect(await s.consume(daily, { ...alice, path: '/other' })).toBeUndefined();
    expect(await s.consume(daily, req())).toBeUndefined();
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await s.consume(daily, alice))!.allowed);
    expect(got).toEqual([true, true, true, false]);
    expect((await s.consume(daily, req({ requestPrincipal: 'https://idp/bob' })))!.allowed).toBe(true);
  });

  it('gives a fresh budget in the next period', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 23, 59));
    const s = service(sqliteStore(), clock);
    const daily = s.policies().find((p) => p.name === 'daily')!;
    const alice = req({ requestPrincipal: 'https://idp/alice' });
    for (let i = 0; i < 3; i++) await s.consume(daily, alice);
    const denied = (await s.consume(daily, alice))!;
    expect(denied).toMatchObject({ allowed: false, resetMs: 60_000 });
    clock.advance(60_000);
    expect((await s.consume(daily, alice))!.allowed).toBe(true);
  });

  it('stores API keys only as a hash, and finds them again by the raw key', async () => {
    const store = sqliteStore();
    const s = service(store, new FakeClock(Date.UTC(2026, 0, 1)));
    const keys = s.policies().find((p) => p.name === 'keys')!;
    const check = (await s.consume(keys, req({ headers: { 'x-api-key': 'secret-key-123' } })))!;
    expect(check.subject).toMatch(/^sha256:[0-9a-f]{32}$/);
    expect(check.subject).not.toContain('secret');
    const [status] = await s.status('secret-key-123', 'shop/keys');
    expect(status).toMatchObject({ used: 1, remaining: 1, limit: 2, subject: check.subject, periodId: '2026-01' });
  });

  it('shadow mode allows an exhausted quota and marks it', async () => {
    const s = service(sqliteStore(), new FakeClock(Date.UTC(2026, 0, 1)));
    const trial = s.policies().find((p) => p.name === 'trial')!;
    const r = req({ sourcePrincipal: 'cluster.local/ns/shop/sa/web' });
    expect((await s.consume(trial, r))!).toMatchObject({ allowed: true, shadowed: false });
    expect((await s.consume(trial, r))!).toMatchObject({ allowed: true, shadowed: true, remaining: 0 });
  });

  it('records every adjustment with who, when, what and why, newest first', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 8));
    const s = service(sqliteStore(), clock);
    const daily = s.policies().find((p) => p.name === 'daily')!;
    const alice = req({ requestPrincipal: 'https://idp/alice' });
    for (let i = 0; i < 3; i++) await s.consume(daily, alice);
    const r1 = await s.adjust('https://idp/alice', 'shop/daily', { action: 'add', delta: -2 }, { name: 'ops-jane', role: 'operator' }, 'support ticket 42');
    expect(r1.status).toMatchObject({ used: 1, remaining: 2 });
    expect(r1.adjustment).toMatchObject({ actor: 'ops-jane', role: 'operator', policy: 'shop/daily', subject: 'https://idp/alice', action: 'add', before: 3, after: 1, reason: 'support ticket 42', time: clock.now() });
    clock.advance(1000);
    await s.adjust('https://idp/alice', 'shop/daily', { action: 'reset' }, { name: 'admin', role: 'admin' }, 'new contract');
    const history = await s.history({ policy: 'shop/daily', key: 'https://idp/alice', limit: 10 });
    expect(history.map((h) => [h.action, h.actor, h.before, h.after])).toEqual([['reset', 'admin', 1, 0], ['add', 'ops-jane', 3, 1]]);
    expect((await s.consume(daily, alice))!.used).toBe(1);
  });

  it('rejects an unknown policy by name', async () => {
    const s = service(sqliteStore(), new FakeClock());
    await expect(s.status('x', 'shop/nope')).rejects.toMatchObject({ code: 'QUOTA_NOT_FOUND' });
  });

  it('refuses policies whose store is not configured', () => {
    const s = service(sqliteStore(), new FakeClock());
    const yaml = QUOTAS.replace('period: month', 'period: month\n  store: redis');
    expect(() => s.setPolicies(compileQuotaPolicies(snapshotOf(yaml)))).toThrow(expect.objectContaining({ code: 'LIMITS_STORE_UNCONFIGURED' }));
  });

  it('applies the failure mode when the store cannot answer', async () => {
    const broken: QuotaStore = {
      kind: 'sqlite',
      consume: async () => { throw new LimitsBackendUnavailableError('down'); },
      used: async () => 0,
      adjust: async () => ({ before: 0, after: 0 }),
      close: async () => {},
    };
    const open = service(broken, new FakeClock());
    const closed = service(broken, new FakeClock(), sqliteStore(), 'closed');
    const r = req({ requestPrincipal: 'https://idp/alice' });
    expect(await open.consume(open.policies()[0]!, r)).toMatchObject({ allowed: true, failedOver: 'open' });
    expect(await closed.consume(closed.policies()[0]!, r)).toMatchObject({ allowed: false, failedOver: 'closed' });
  });
});
