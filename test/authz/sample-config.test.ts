/** The shipped sample configuration (`policies/`) through ext_authz, with the Rego engine registered. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regoPolicyEngine } from '../../src/policy/index.ts';
import { compileRego } from '../../src/policy/rego/index.ts';
import { fromJSON, toJSON } from '../../src/policy/rego/value.ts';
import { checkRequest, type Harness, startAuthz } from './helpers.ts';

function readTree(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) Object.assign(out, readTree(full, `${prefix}${name}/`));
    else out[`${prefix}${name}`] = readFileSync(full, 'utf8');
  }
  return out;
}

const web = 'spiffe://cluster.local/ns/shop/sa/web';
const orders = 'spiffe://cluster.local/ns/shop/sa/orders';
const payments = 'spiffe://cluster.local/ns/shop/sa/payments';

describe('the sample configuration', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuthz(readTree(path.resolve('policies')), { configure: (authz) => authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON })) });
  });
  afterAll(() => h.close());

  it('allows web → orders on the orders API and denies other callers', async () => {
    expect((await h.check(checkRequest({ source: web, destination: orders, path: '/api/orders/7' }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: payments, destination: orders, path: '/api/orders/7' }))).status.code).toBe(status.PERMISSION_DENIED);
  });

  it('denies debug endpoints mesh-wide', async () => {
    expect((await h.check(checkRequest({ source: web, destination: orders, path: '/debug/vars' }))).status.code).toBe(status.PERMISSION_DENIED);
  });

  it('lets anyone reach the public web pages but not account pages without a token', async () => {
    expect((await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/edge/sa/gateway', destination: web, path: '/static/app.js' }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/edge/sa/gateway', destination: web, path: '/account/me' }))).status.code).toBe(status.PERMISSION_DENIED);
  });

  it('runs the payments Rego policy: small charges pass, large ones need approval', async () => {
    const pay = (amount: number, headers: Record<string, string> = {}) => h.check(checkRequest({
      source: orders, destination: payments, method: 'POST', path: '/payments.v1.Payments/Charge',
      headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ amount }),
    }));
    expect((await pay(10)).status.code).toBe(status.OK);
    expect((await pay(5000)).status.code).toBe(status.PERMISSION_DENIED);
    expect((await pay(5000, { 'x-approved-by': 'cfo' })).status.code).toBe(status.OK);
  });
});
