import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { createRegoPolicyEngine } from '../../src/policy/engines.ts';
import { checkRequest, headerOf, startAuthz, type Harness, yamlDoc } from '../authz/helpers.ts';
import { compileWat, packBundle } from '../policy/wasm/fixture.ts';
import { decisionIdOf, type FullMeshward, startFull } from './helpers.ts';

interface StoredDecision { decision: string; matchedPolicies: { kind: string; name: string; action?: string }[] }

const ORDERS_TO_PAYMENTS = { source: 'spiffe://cluster.local/ns/shop/sa/orders', destination: 'spiffe://cluster.local/ns/shop/sa/payments', method: 'POST', path: '/payments.v1.Payments/Charge' };

describe('the sample RegoPolicy in `meshward serve` (default capabilities)', () => {
  let full: FullMeshward;
  beforeAll(async () => {
    full = await startFull();
  });
  afterAll(async () => {
    await full.close();
  });

  it('allows a small charge from orders to payments and names the Rego package and rule in the audit record', async () => {
    const res = await full.check(checkRequest({ ...ORDERS_TO_PAYMENTS, body: '{"amount": 20}', headers: { 'content-type': 'application/json' } }));
    expect(res.status.code).toBe(0);
    let record: StoredDecision | undefined;
    await expect.poll(async () => {
      const r = await full.api<StoredDecision>(`/v1/decisions/${decisionIdOf(res)}`);
      record = r.status === 200 ? r.body : undefined;
      return r.status;
    }, { timeout: 10_000 }).toBe(200);
    expect(record!.matchedPolicies).toContainEqual(expect.objectContaining({ kind: 'RegoPolicy', name: 'payments-limits', action: 'envoy.authz.allow' }));
  });

  it('denies a large charge without an approval header, and allows it with one', async () => {
    const big = { ...ORDERS_TO_PAYMENTS, body: '{"amount": 5000}' };
    expect((await full.check(checkRequest({ ...big, headers: { 'content-type': 'application/json' } }))).status.code).toBe(7);
    expect((await full.check(checkRequest({ ...big, headers: { 'content-type': 'application/json', 'x-approved-by': 'carol' } }))).status.code).toBe(0);
  });
});

describe('RegoPolicy with an OPA wasm bundle', () => {
  let h: Harness;
  beforeAll(async () => {
    const bundle = await packBundle({ '/policy.wasm': await compileWat(), '/data.json': '{}' });
    h = await startAuthz({
      'services.yaml': yamlDoc('Service', 'orders', 'shop', 'serviceAccount: orders\nlabels: { app: orders }\nports: [{ name: http, port: 8080 }]'),
    }, { configure: (authz: AuthzCapability) => authz.engines.register(createRegoPolicyEngine()) });
    // The bundle is binary: written next to the config, then the RegoPolicy that references it.
    writeFileSync(path.join(h.configDir, 'bundle.tar.gz'), bundle);
    h.writeConfig({ 'rego.yaml': yamlDoc('RegoPolicy', 'wasm-admins', 'shop', 'selector: { matchLabels: { app: orders } }\nwasmBundle: bundle.tar.gz\nentrypoint: authz/allow') });
    expect((await h.mw.config.reload()).changed).toBe(true);
    await h.authz.recompile();
  });
  afterAll(async () => {
    await h.close();
  });

  it('allows what the wasm policy allows and denies what it denies', async () => {
    const allowed = await h.check(checkRequest({ headers: { role: 'admin' } }));
    expect(allowed.status.code).toBe(0);
    const denied = await h.check(checkRequest({ headers: { role: 'viewer' } }));
    expect(denied.status.code).toBe(7);
    expect(headerOf(denied.denied_response?.headers, 'content-type')).toContain('application/json');
  });
});
