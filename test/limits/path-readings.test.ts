/** A rate limit on a path prefix cannot be slipped past with `//`, `;` parameters or `%2F` (issue 13 item 4). */
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import type { Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { createLimitedPipeline, ORDERS_SERVICE } from './pipeline.ts';

/** Nothing may reach /admin (a limit of 0); everything else is unlimited. */
const CONFIG = `${ORDERS_SERVICE}apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: no-admin, namespace: shop }
spec:
  domain: shop
  descriptors:
    - key: admin
      value: "yes"
      rate_limit: { unit: minute, requests_per_unit: 0 }
  requestDescriptors:
    - actions: [{ requestMatch: { descriptorKey: admin, descriptorValue: "yes", pathPrefix: /admin/ } }]
`;

let mw: Meshward | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await mw?.stop();
  mw = undefined;
  dirs.splice(0).forEach(removeDir);
});

const request = (path: string) => ({
  attributes: {
    source: { principal: 'spiffe://cluster.local/ns/shop/sa/web' },
    destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
    request: { http: { id: 'r1', method: 'GET', path, host: 'orders', headers: { 'x-request-id': 'r1' } } },
  },
});

describe('path-prefix limits under path normalization', () => {
  it('limits every reading of a limited prefix and leaves other paths alone', async () => {
    const configDir = writeConfigDir({ 'c.yaml': CONFIG });
    const dataDir = tempDir('mw-limits-readings-');
    dirs.push(configDir, dataDir);
    mw = await createLimitedPipeline(configDir, dataDir, new FakeClock(Date.UTC(2026, 0, 1)));
    await mw.start();
    const authz = mw.capability<AuthzCapability>('authz')!;
    const decision = async (path: string) => (await authz.check(request(path))).record.decision;
    for (const path of ['/admin/x', '//admin/x', '/;/admin/x', '/x/..%2fadmin/y', '/admin;v=1/x']) expect(await decision(path), path).toBe('rate_limited');
    for (const path of ['/public/x', '/administrator/x', '/public/a%2Fadmin']) expect(await decision(path), path).toBe('allow');
  });
});
