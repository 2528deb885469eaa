import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ServiceError, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuditCapability } from '../../src/audit/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { type LimitsCapability, createLimitsCapability } from '../../src/limits/index.ts';
import { RLS_SERVICE, type RlsRequest, type RlsResponse } from '../../src/limits/rls.ts';
import { type Meshward, createMeshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

const POLICIES = `apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: edge, namespace: shop }
spec:
  domain: edge
  algorithm: fixed-window
  descriptors:
    - key: remote_address
      rate_limit: { unit: minute, requests_per_unit: 2 }
    - key: path
      value: /health
      rate_limit: { unlimited: true }
    - key: generic_key
      value: gcra
      rate_limit: { name: smooth, unit: second, requests_per_unit: 4 }
---
apiVersion: meshward.io/v1
kind: QuotaPolicy
metadata: { name: daily, namespace: shop }
spec:
  subject: { from: requestPrincipal }
  limit: 100
  period: day
`;

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(options: { configDir?: string; dataDir?: string; audit?: boolean } = {}): Promise<{ mw: Meshward; clock: FakeClock; dataDir: string; configDir: string }> {
  const configDir = options.configDir ?? writeConfigDir({ 'limits.yaml': POLICIES });
  const dataDir = options.dataDir ?? tempDir('mw-limits-data-');
  if (!options.configDir) dirs.push(configDir);
  if (!options.dataDir) dirs.push(dataDir);
  const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 0, 15));
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [...(options.audit ? [createAuditCapability] : []), createLimitsCapability] },
  );
  running.push(mw);
  await mw.start();
  return { mw, clock, dataDir, configDir };
}

function rls(address: string): { call(req: RlsRequest): Promise<RlsResponse>; close(): void } {
  const Client = envoyService(RLS_SERVICE);
  const client = new Client(address, credentials.createInsecure());
  return {
    call: (req) => new Promise((resolve, reject) => {
      (client as unknown as { ShouldRateLimit(r: RlsRequest, cb: (e: ServiceError | null, r: RlsResponse) => void): void }).ShouldRateLimit(req, (e, r) => (e ? reject(e) : resolve(r)));
    }),
    close: () => client.close(),
  };
}

const entry = (key: string, value: string) => ({ entries: [{ key, value }] });

describe('Envoy RateLimitService (RLS) on the shared gRPC server', () => {
  it('answers OK then OVER_LIMIT with current_limit, limit_remaining and duration_until_reset', async () => {
    const { mw } = await start();
    const client = rls(mw.addresses.grpc);
    try {
      const req = { domain: 'edge', descriptors: [entry('remote_address', '10.1.1.1')] };
      const first = await client.call(req);
      expect(first).toMatchObject({
        overall_code: 'OK',
        statuses: [{ code: 'OK', current_limit: { requests_per_unit: 2, unit: 'MINUTE' }, limit_remaining: 1, duration_until_reset: { seconds: '45' } }],
      });
      await client.call(req);
      const third = await client.call(req);
      expect(third.overall_code).toBe('OVER_LIMIT');
      expect(third.statuses[0]).toMatchObject({ code: 'OVER_LIMIT', duration_until_reset: { seconds: '45' } });
      // Envoy adds these to its 429; allowed responses get none (the policy does not set responseHeaders).
      expect(first.response_headers_to_add ?? []).toEqual([]);
      expect(third.response_headers_to_add).toEqual([
        { key: 'retry-after', value: '45' },
        { key: 'ratelimit-policy', value: '"edge";q=2;w=60' },
        { key: 'ratelimit', value: '"edge";r=0;t=45' },
      ]);
      // Another address has its own counter.
      expect((await client.call({ domain: 'edge', descriptors: [entry('remote_address', '10.1.1.2')] })).overall_code).toBe('OK');
    } finally {
      client.close();
    }
  });

  it('reports unlimited and unmatched descriptors as OK, one status per descriptor, and honours hits_addend', async () => {
    const { mw } = await start();
    const client = rls(mw.addresses.grpc);
    try {
      const res = await client.call({ domain: 'edge', descriptors: [entry('path', '/health'), entry('nothing', 'x'), entry('generic_key', 'gcra')], hits_addend: 3 });
      expect(res.overall_code).toBe('OK');
      expect(res.statuses).toHaveLength(3);
      expect(res.statuses[0]).toMatchObject({ code: 'OK', limit_remaining: 4294967295 });
      expect(res.statuses[0]!.current_limit).toBeUndefined();
      expect(res.statuses[1]!.current_limit).toBeUndefined();
      expect(res.statuses[2]).toMatchObject({ code: 'OK', current_limit: { name: 'smooth', requests_per_unit: 4, unit: 'SECOND' }, limit_remaining: 1 });
      const again = await client.call({ domain: 'edge', descriptors: [entry('generic_key', 'gcra')], hits_addend: 2 });
      expect(again.overall_code).toBe('OVER_LIMIT');
    } finally {
      client.close();
    }
  });

  it('rejects an empty domain with INVALID_ARGUMENT', async () => {
    const { mw } = await start();
    const client = rls(mw.addresses.grpc);
    try {
      await expect(client.call({ domain: '', descriptors: [entry('a', 'b')] })).rejects.toMatchObject({ code: GrpcStatus.INVALID_ARGUMENT });
    } finally {
      client.close();
    }
  });

  it('picks up policy changes on configuration reload', async () => {
    const { mw, configDir } = await start({ configDir: writeConfigDir({ 'limits.yaml': POLICIES }) });
    dirs.push(configDir);
    const client = rls(mw.addresses.grpc);
    try {
      expect((await client.call({ domain: 'late', descriptors: [entry('k', 'v')] })).statuses[0]!.current_limit).toBeUndefined();
      writeFileSync(path.join(configDir, 'late.yaml'), `apiVersion: meshward.io/v1\nkind: RateLimitPolicy\nmetadata: { name: late, namespace: shop }\nspec:\n  domain: late\n  descriptors: [{ key: k, rate_limit: { unit: hour, requests_per_unit: 1 } }]\n`);
      expect((await mw.config.reload()).changed).toBe(true);
      expect((await client.call({ domain: 'late', descriptors: [entry('k', 'v')] })).overall_code).toBe('OK');
      expect((await client.call({ domain: 'late', descriptors: [entry('k', 'v')] })).overall_code).toBe('OVER_LIMIT');
    } finally {
      client.close();
    }
  });
});

describe('quota API', () => {
  const adminToken = (dataDir: string) => readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();

  it('requires a token to read quotas and an operator to adjust them', async () => {
    const { mw } = await start();
    expect((await mw.http.inject('/v1/quotas/https%3A%2F%2Fidp%2Falice')).statusCode).toBe(401);
    const auditor = mw.apiAuth.createToken('aud', 'auditor');
    const read = await mw.http.inject({ url: '/v1/quotas/https%3A%2F%2Fidp%2Falice', headers: { authorization: `Bearer ${auditor}` } });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ quotas: [{ policy: 'shop/daily', subject: 'https://idp/alice', limit: 100, used: 0, remaining: 100, periodId: '2026-01-01' }] });
    const adjust = { policy: 'shop/daily', action: 'reset', reason: 'x' };
    const forbidden = await mw.http.inject({ method: 'POST', url: '/v1/quotas/alice', headers: { authorization: `Bearer ${auditor}` }, payload: adjust });
    expect(forbidden.statusCode).toBe(403);
    expect((await mw.http.inject({ method: 'POST', url: '/v1/quotas/alice', payload: adjust })).statusCode).toBe(401);
  });

  it('adjusts, records who/when/what/why, and exposes the history', async () => {
    const { mw, clock } = await start();
    const limits = mw.capability<LimitsCapability>('limits')!;
    const daily = limits.quotas.policies()[0]!;
    for (let i = 0; i < 7; i++) await limits.quotas.consume(daily, { requestPrincipal: 'https://idp/alice', headers: {}, path: '/', method: 'GET' });
    const operator = mw.apiAuth.createToken('ops-jane', 'operator');
    const auth = { authorization: `Bearer ${operator}` };
    const res = await mw.http.inject({ method: 'POST', url: '/v1/quotas/https%3A%2F%2Fidp%2Falice', headers: auth, payload: { policy: 'shop/daily', action: 'add', delta: -5, reason: 'goodwill credit' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ quota: { used: 2, remaining: 98 }, adjustment: { actor: 'ops-jane', role: 'operator', action: 'add', before: 7, after: 2, reason: 'goodwill credit', time: clock.now() } });
    const bad = await mw.http.inject({ method: 'POST', url: '/v1/quotas/alice', headers: auth, payload: { policy: 'shop/daily', action: 'set', reason: 'no value' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/needs "used"/);
    const unknown = await mw.http.inject({ method: 'POST', url: '/v1/quotas/alice', headers: auth, payload: { policy: 'shop/nope', action: 'reset', reason: 'x' } });
    expect(unknown.statusCode).toBe(404);
    const history = await mw.http.inject({ url: '/v1/quota-adjustments?policy=shop/daily', headers: auth });
    expect(history.json().adjustments).toHaveLength(1);
    expect(history.json().adjustments[0]).toMatchObject({ actor: 'ops-jane', subject: 'https://idp/alice', before: 7, after: 2 });
  });

  it('also records each adjustment in the audit log\'s hash chain, with who, what and why', async () => {
    const { mw, clock } = await start({ audit: true });
    const limits = mw.capability<LimitsCapability>('limits')!;
    const daily = limits.quotas.policies()[0]!;
    for (let i = 0; i < 3; i++) await limits.quotas.consume(daily, { requestPrincipal: 'https://idp/alice', headers: {}, path: '/', method: 'GET' });
    const operator = mw.apiAuth.createToken('ops-jane', 'operator');
    const res = await mw.http.inject({ method: 'POST', url: '/v1/quotas/https%3A%2F%2Fidp%2Falice', headers: { authorization: `Bearer ${operator}` }, payload: { policy: 'shop/daily', action: 'reset', reason: 'incident 42' } });
    expect(res.statusCode).toBe(200);
    await (mw.capability('audit') as unknown as { flush(): Promise<void> }).flush();
    const auditor = { authorization: `Bearer ${mw.apiAuth.createToken('aud', 'auditor')}` };
    const listed = await mw.http.inject({ url: '/v1/decisions?pathPrefix=/v1/quotas/', headers: auditor });
    expect(listed.json().records).toEqual([expect.objectContaining({
      time: clock.now(), decision: 'allow', requestPrincipal: 'ops-jane', destination: 'meshward/quota', method: 'POST', path: '/v1/quotas/https://idp/alice',
      matchedPolicies: [{ kind: 'QuotaPolicy', namespace: 'shop', name: 'daily', action: 'reset' }],
      reason: expect.stringMatching(/^quota reset on https:\/\/idp\/alice .* by ops-jane \(operator\): used 3 -> 0; reason: incident 42$/),
    })]);
    const verified = await mw.http.inject({ url: '/v1/decisions/verify', headers: auditor });
    expect(verified.json()).toMatchObject({ ok: true, checked: 1 });
  });

  it('keeps quota usage and the adjustment history across a restart', async () => {
    const configDir = writeConfigDir({ 'limits.yaml': POLICIES });
    const dataDir = tempDir('mw-limits-data-');
    dirs.push(configDir, dataDir);
    const first = await start({ configDir, dataDir });
    const limits = first.mw.capability<LimitsCapability>('limits')!;
    for (let i = 0; i < 3; i++) await limits.quotas.consume(limits.quotas.policies()[0]!, { requestPrincipal: 'https://idp/bob', headers: {}, path: '/', method: 'GET' });
    const admin = { authorization: `Bearer ${adminToken(dataDir)}` };
    await first.mw.http.inject({ method: 'POST', url: '/v1/quotas/https%3A%2F%2Fidp%2Fbob', headers: admin, payload: { policy: 'shop/daily', action: 'add', delta: 10, reason: 'penalty' } });
    await first.mw.stop();
    running.splice(running.indexOf(first.mw), 1);

    const second = await start({ configDir, dataDir });
    const got = await second.mw.http.inject({ url: '/v1/quotas/https%3A%2F%2Fidp%2Fbob', headers: admin });
    expect(got.json().quotas[0]).toMatchObject({ used: 13, remaining: 87 });
    const history = await second.mw.http.inject({ url: '/v1/quota-adjustments', headers: admin });
    expect(history.json().adjustments.map((a: { reason: string }) => a.reason)).toEqual(['penalty']);
  });
});
