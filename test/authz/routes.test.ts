/** POST /v1/authz/check: the what-if check for operators. */
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, ORDERS_FROM_WEB, SERVICES, startAuthz } from './helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const POLICY = ORDERS_FROM_WEB;

const request = (source: string) => ({
  attributes: {
    source: { principal: `spiffe://cluster.local/ns/shop/sa/${source}` },
    destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
    request: { http: { method: 'GET', path: '/api/orders', host: 'orders', headers: {} } },
  },
});

describe('POST /v1/authz/check', () => {
  it('refuses a caller without a token', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICY });
    const res = await h.mw.http.inject({ method: 'POST', url: '/v1/authz/check', payload: request('web') });
    expect(res.statusCode).toBe(401);
  });

  it('explains a denial and an allow with the matched policies, without auditing them', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICY });
    const headers = { authorization: `Bearer ${h.adminToken()}` };
    const denied = await h.mw.http.inject({ method: 'POST', url: '/v1/authz/check', headers, payload: request('intruder') });
    expect(denied.statusCode).toBe(200);
    expect(denied.json()).toMatchObject({ decision: 'deny', status: 403, reason: 'no ALLOW policy matched', destination: 'shop/orders', configVersion: h.mw.config.current().version, matchedPolicies: [] });
    const allowed = await h.mw.http.inject({ method: 'POST', url: '/v1/authz/check', headers, payload: request('web') });
    expect(allowed.json()).toMatchObject({ decision: 'allow', status: 200, matchedPolicies: [{ name: 'orders-from-web', effect: 'allow' }], response: { status: { code: 0 } } });
    expect(h.records).toEqual([]);
  });
});
