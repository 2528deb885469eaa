import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptyMutations, httpStatusOf } from '../../src/authz/decision.ts';
import type { AuthzInput, RequestFacts } from '../../src/authz/input.ts';
import type { CheckContext, Workload } from '../../src/authz/stage.ts';
import type { ConfigSnapshot } from '../../src/config/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { RateLimitEngine } from '../../src/limits/engine.ts';
import { MemoryBackend } from '../../src/limits/memory.ts';
import { QuotaService } from '../../src/limits/quota/service.ts';
import { SqliteQuotaStore, openQuotaDatabase } from '../../src/limits/quota/sqlite.ts';
import { createLimitsStage } from '../../src/limits/stage.ts';
import { snapshotOf } from './helpers.ts';

const CONFIG = `apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: orders-per-caller, namespace: shop }
spec:
  domain: shop
  selector: { matchLabels: { app: orders } }
  responseHeaders: true
  descriptors:
    - key: source_principal
      rate_limit: { unit: second, requests_per_unit: 2 }
    - key: api_key
      rate_limit: { unit: minute, requests_per_unit: 100 }
      descriptors:
        - key: writes
          value: "yes"
          rate_limit: { unit: minute, requests_per_unit: 1 }
  requestDescriptors:
    - actions: [{ sourcePrincipal: { descriptorKey: source_principal } }]
    - actions:
        - { requestHeader: { headerName: x-api-key, descriptorKey: api_key } }
        - { requestMatch: { descriptorKey: writes, descriptorValue: "yes", methods: [POST, PUT] } }
---
apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: mesh-canary, namespace: meshward-system }
spec:
  domain: mesh
  descriptors:
    - key: destination_service
      shadow_mode: true
      rate_limit: { unit: minute, requests_per_unit: 1 }
  requestDescriptors:
    - actions: [{ destinationService: {} }]
---
apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: other-namespace, namespace: billing }
spec:
  domain: billing
  descriptors: [{ key: generic_key, value: all, rate_limit: { unit: day, requests_per_unit: 0 } }]
  requestDescriptors:
    - actions: [{ genericKey: { descriptorValue: all } }]
---
apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: web-daily, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  subject: { from: requestPrincipal }
  limit: 2
  period: day
  responseHeaders: true
`;

const QUOTA_ON_POSTGRES = `apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: shared-monthly, namespace: shop }
spec:
  subject: { from: sourcePrincipal }
  limit: 5
  period: month
  store: postgres
`;

const dirs: string[] = [];
const stores: SqliteQuotaStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(yaml = CONFIG) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 9, 0, 0));
  const registry = createRegistry();
  const engine = new RateLimitEngine({ backend: new MemoryBackend(), clock, logger: silentLogger(), registry, failureMode: 'open' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-stage-'));
  dirs.push(dir);
  const sqlite = new SqliteQuotaStore(openQuotaDatabase(dir));
  stores.push(sqlite);
  const quotas = new QuotaService({ stores: () => sqlite, log: sqlite, clock, logger: silentLogger(), registry, failureMode: 'open' });
  const snapshot = snapshotOf(yaml);
  return { clock, snapshot, stage: createLimitsStage(snapshot, { engine, quotas }) };
}

const ORDERS: Workload = { namespace: 'shop', service: 'orders', labels: { app: 'orders' }, display: 'shop/orders' };
const WEB: Workload = { namespace: 'shop', service: 'web', labels: { app: 'web' }, display: 'shop/web' };

function ctx(snapshot: ConfigSnapshot, over: { workload?: Workload; source?: string; method?: string; headers?: Record<string, string>; principal?: string } = {}): CheckContext {
  const request: RequestFacts = {
    method: over.method ?? 'GET', host: 'orders', path: '/orders', headers: over.headers ?? {}, contextExtensions: {},
    ...(over.source === undefined ? { sourcePrincipal: 'cluster.local/ns/shop/sa/web' } : over.source ? { sourcePrincipal: over.source } : {}),
  };
  return {
    snapshot, decisionId: 'd', now: 0, input: {} as AuthzInput, request, workload: over.workload ?? ORDERS,
    ...(over.principal ? { auth: { principal: over.principal, issuer: 'i', subject: 's', audiences: [], claims: {}, policy: 'p' } } : {}),
    matchedPolicies: [], mutations: emptyMutations(),
  };
}

describe('ext_authz limits stage', () => {
  it('allows under the limit with RateLimit headers, then answers 429 with Retry-After and the limit that fired', async () => {
    const { snapshot, stage } = setup();
    const first = ctx(snapshot);
    expect(await stage.run(first)).toBeUndefined();
    const headers = Object.fromEntries(first.mutations.responseHeaders.map((h) => [h.name, h.value]));
    expect(headers['ratelimit-policy']).toBe('"orders-per-caller";q=2;w=1');
    expect(headers.ratelimit).toBe('"orders-per-caller";r=1;t=1');
    await stage.run(ctx(snapshot));
    const third = ctx(snapshot);
    const decision = await stage.run(third);
    expect(decision).toMatchObject({ outcome: 'rate_limited', retryAfterSeconds: 1, limit: 'RateLimitPolicy shop/orders-per-caller: source_principal (2/second)' });
    expect(httpStatusOf(decision!)).toBe(429);
    expect(decision!.outcome === 'rate_limited' && decision!.headers).toEqual([{ name: 'ratelimit-policy', value: '"orders-per-caller";q=2;w=1' }, { name: 'ratelimit', value: '"orders-per-caller";r=0;t=1' }]);
    expect(third.matchedPolicies).toContainEqual({ kind: 'RateLimitPolicy', namespace: 'shop', name: 'orders-per-caller', effect: 'limited' });
  });

  it('limits each caller separately and recovers after the emission interval', async () => {
    const { snapshot, stage, clock } = setup();
    for (let i = 0; i < 2; i++) await stage.run(ctx(snapshot));
    expect(await stage.run(ctx(snapshot))).toMatchObject({ outcome: 'rate_limited' });
    expect(await stage.run(ctx(snapshot, { source: 'cluster.local/ns/shop/sa/admin' }))).toBeUndefined();
    clock.advance(500);
    expect(await stage.run(ctx(snapshot))).toBeUndefined();
  });

  it('builds nested descriptors from header and method actions, dropping a descriptor whose header is absent', async () => {
    const { snapshot, stage } = setup();
    const post = { source: '', method: 'POST', headers: { 'x-api-key': 'k1' } };
    expect(await stage.run(ctx(snapshot, post))).toBeUndefined();
    expect(await stage.run(ctx(snapshot, post))).toMatchObject({ outcome: 'rate_limited', limit: 'RateLimitPolicy shop/orders-per-caller: api_key.writes_yes (1/minute)' });
    // A GET does not produce the `writes` entry, so the descriptor is dropped (Envoy's rule): no limit.
    expect(await stage.run(ctx(snapshot, { source: '', headers: { 'x-api-key': 'k1' } }))).toBeUndefined();
    // No principal, no key: nothing to count.
    const none = ctx(snapshot, { source: '' });
    expect(await stage.run(none)).toBeUndefined();
    expect(none.mutations.responseHeaders).toEqual([]);
  });

  it('never puts descriptor values (API keys, principals) into the audit limit or the reason', async () => {
    const { snapshot, stage } = setup();
    const post = { source: '', method: 'POST', headers: { 'x-api-key': 'super-secret' } };
    await stage.run(ctx(snapshot, post));
    const d = await stage.run(ctx(snapshot, post));
    expect(JSON.stringify(d)).not.toContain('super-secret');
  });

  it('shadow mode logs would-be denials and marks the policy dry-run without enforcing', async () => {
    const { snapshot, stage } = setup();
    await stage.run(ctx(snapshot));
    const second = ctx(snapshot, { source: 'cluster.local/ns/shop/sa/other' });
    expect(await stage.run(second)).toBeUndefined();
    expect(second.matchedPolicies).toContainEqual({ kind: 'RateLimitPolicy', namespace: 'meshward-system', name: 'mesh-canary', effect: 'limited', dryRun: true });
  });

  it('scopes policies like Istio: own namespace and selector, or mesh-wide from the root namespace', async () => {
    const { snapshot, stage } = setup();
    const billing = ctx(snapshot, { workload: { namespace: 'billing', labels: { app: 'ledger' }, display: 'billing/ledger' } });
    expect(await stage.run(billing)).toMatchObject({ outcome: 'rate_limited', limit: expect.stringContaining('billing/other-namespace') });
    const web = ctx(snapshot, { workload: WEB });
    expect(await stage.run(web)).toBeUndefined();
    expect(web.matchedPolicies.map((p) => p.name)).toEqual(['mesh-canary']);
  });

  it('counts quotas per request principal, refuses when spent, and never charges quota for rate-limited requests', async () => {
    const { snapshot, stage } = setup();
    const alice = { workload: WEB, principal: 'https://idp/alice' };
    const first = ctx(snapshot, alice);
    expect(await stage.run(first)).toBeUndefined();
    expect(first.mutations.responseHeaders.find((h) => h.name === 'ratelimit')?.value).toBe('"web-daily";r=1;t=54000');
    await stage.run(ctx(snapshot, alice));
    const spent = await stage.run(ctx(snapshot, alice));
    expect(spent).toMatchObject({ outcome: 'rate_limited', retryAfterSeconds: 54_000, limit: 'QuotaPolicy shop/web-daily: requestPrincipal (2/day)' });
    expect(await stage.run(ctx(snapshot, { ...alice, principal: 'https://idp/bob' }))).toBeUndefined();
  });

  it('refuses to compile a snapshot whose quota names an unconfigured store (the previous pipeline keeps serving)', () => {
    const { stage } = setup();
    expect(stage.name).toBe('limits');
    const clock = new FakeClock();
    const registry = createRegistry();
    const engine = new RateLimitEngine({ backend: new MemoryBackend(), clock, logger: silentLogger(), registry, failureMode: 'open' });
    const quotas = new QuotaService({ stores: (k) => (k === 'sqlite' || k === 'auto' ? stores[0] : undefined), log: stores[0]!, clock, logger: silentLogger(), registry, failureMode: 'open' });
    expect(() => createLimitsStage(snapshotOf(CONFIG + '---\n' + QUOTA_ON_POSTGRES), { engine, quotas })).toThrow(expect.objectContaining({ code: 'LIMITS_STORE_UNCONFIGURED' }));
  });

  it('answers synchronously with the memory backend when no quota applies (no await on the hot path)', () => {
    const { snapshot, stage } = setup();
    expect(stage.run(ctx(snapshot))).not.toBeInstanceOf(Promise);
  });
});
