/** The limits stage inside the real ext_authz pipeline (authz capability built first, as in serve). */
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import type { Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { createLimitedPipeline, ORDERS_SERVICE } from './pipeline.ts';

const CONFIG = `${ORDERS_SERVICE}apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: orders-per-caller, namespace: shop }
spec:
  domain: shop
  selector: { matchLabels: { app: orders } }
  responseHeaders: true
  descriptors:
    - key: source_principal
      rate_limit: { unit: minute, requests_per_unit: 2 }
  requestDescriptors:
    - actions: [{ sourcePrincipal: {} }]
`;

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

const request = (source: string) => ({
  attributes: {
    source: { principal: `spiffe://cluster.local/ns/shop/sa/${source}` },
    destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
    request: { http: { id: 'r1', method: 'GET', path: '/orders?x=1', host: 'orders', headers: { 'x-request-id': 'r1' } } },
  },
});

type Header = { header: { key: string; value: string } };
const headerMap = (hs: Header[] | undefined) => Object.fromEntries((hs ?? []).map((h) => [h.header.key, h.header.value]));

describe('limits in the ext_authz pipeline', () => {
  // GCRA (the default): 2/minute refills one every 30 s, so the first request's bucket is full again in 30 s.
  it('allows with RateLimit headers, then denies with 429, Retry-After, and the limit in the audit record', async () => {
    const configDir = writeConfigDir({ 'c.yaml': CONFIG });
    const dataDir = tempDir('mw-limits-authz-');
    dirs.push(configDir, dataDir);
    const mw = await createLimitedPipeline(configDir, dataDir, new FakeClock(Date.UTC(2026, 0, 1, 12, 0, 20)));
    running.push(mw);
    await mw.start();
    const authz = mw.capability<AuthzCapability>('authz')!;

    const first = await authz.check(request('web'));
    expect(first.record.decision).toBe('allow');
    const ok = first.response.okResponse as { responseHeadersToAdd?: Header[] };
    expect(headerMap(ok.responseHeadersToAdd)).toMatchObject({ 'ratelimit-policy': '"orders-per-caller";q=2;w=60', ratelimit: '"orders-per-caller";r=1;t=30' });
    expect(first.record.matchedPolicies).toContainEqual({ kind: 'RateLimitPolicy', namespace: 'shop', name: 'orders-per-caller' });

    await authz.check(request('web'));
    const denied = await authz.check(request('web'));
    expect(denied.record).toMatchObject({ decision: 'rate_limited', status: 429, limit: 'RateLimitPolicy shop/orders-per-caller: source_principal (2/minute)' });
    const deniedResponse = denied.response.deniedResponse as { status: { code: number }; headers: Header[] };
    expect(deniedResponse.status.code).toBe(429);
    expect(headerMap(deniedResponse.headers)).toMatchObject({ 'retry-after': '30', 'ratelimit-policy': '"orders-per-caller";q=2;w=60', ratelimit: '"orders-per-caller";r=0;t=30' });

    // Another caller is not affected.
    expect((await authz.check(request('admin'))).record.decision).toBe('allow');
  });
});
