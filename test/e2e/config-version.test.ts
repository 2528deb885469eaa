import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { XdsCapability } from '../../src/xds/index.ts';
import { checkRequest } from '../authz/helpers.ts';
import { AdsClient, node, TYPE } from '../xds/ads-client.ts';
import { decisionIdOf, type FullMeshward, startFull } from './helpers.ts';

interface StoredDecision { decisionId: string; configVersion: string; decision: string; matchedPolicies: { name: string }[] }

let full: FullMeshward | undefined;
let ads: AdsClient | undefined;
afterEach(async () => {
  ads?.close();
  await full?.close();
  full = ads = undefined;
});

async function auditedDecision(f: FullMeshward, decisionId: string): Promise<StoredDecision> {
  let found: StoredDecision | undefined;
  await expect.poll(async () => {
    const res = await f.api<StoredDecision>(`/v1/decisions/${decisionId}`);
    if (res.status === 200) found = res.body;
    return res.status;
  }, { timeout: 10_000 }).toBe(200);
  return found!;
}

const DENY_HISTORY = `---
apiVersion: meshward.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-order-history, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  action: DENY
  rules:
    - to: [{ operation: { paths: ["/api/orders/history"] } }]
`;

describe('one configuration version across xDS, ext_authz and the audit log', () => {
  it('a new policy changes the version ADS serves and the version stamped on audit records', async () => {
    full = await startFull();
    const f = full;
    const v1 = f.mw.config.current().version;

    // A sidecar of orders, authenticated with a meshward bootstrap token, syncs its clusters.
    ads = new AdsClient(f.mw.addresses.grpc, 'sotw', await f.workloadToken('shop', 'orders'));
    ads.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.cds });
    const cds = await ads.next();
    expect(cds.version_info).toBe(v1);
    ads.send({ type_url: TYPE.cds, response_nonce: cds.nonce, version_info: cds.version_info });

    // web → orders is allowed by the sample policies, and the audit record names v1.
    const before = await f.check(checkRequest({ path: '/api/orders/history' }));
    expect(before.status.code).toBe(0);
    expect((await auditedDecision(f, decisionIdOf(before))).configVersion).toBe(v1);

    // A new DENY policy: a new version everywhere.
    appendFileSync(path.join(f.configDir, 'authz.yaml'), DENY_HISTORY);
    const reload = await f.mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: `Bearer ${f.adminToken}` } });
    expect(reload.statusCode).toBe(200);
    const v2 = f.mw.config.current().version;
    expect(v2).not.toBe(v1);

    const xds = f.mw.capability<XdsCapability>('xds')!;
    await expect.poll(() => xds.version(), { timeout: 5_000 }).toBe(v2);
    const proxies = await f.api<{ version: string; proxies: { nodeId: string }[] }>('/v1/proxies');
    expect(proxies.body.version).toBe(v2);
    expect(proxies.body.proxies.map((p) => p.nodeId)).toEqual(['orders-1']);

    const after = await f.check(checkRequest({ path: '/api/orders/history' }));
    expect(after.status.code).toBe(7); // PERMISSION_DENIED
    const record = await auditedDecision(f, decisionIdOf(after));
    expect(record).toMatchObject({ configVersion: v2, decision: 'deny' });
    expect(record.matchedPolicies.map((p) => p.name)).toContain('deny-order-history');

    // Other paths are still allowed, under the new version.
    const other = await f.check(checkRequest({ path: '/api/orders/42' }));
    expect(other.status.code).toBe(0);
    expect((await auditedDecision(f, decisionIdOf(other))).configVersion).toBe(v2);
  });

  it('refuses an unauthenticated sidecar while serving an authenticated one', async () => {
    full = await startFull();
    ads = new AdsClient(full.mw.addresses.grpc, 'sotw');
    ads.send({ node: node('rogue', { SERVICE: 'orders' }), type_url: TYPE.cds });
    await expect(ads.next()).rejects.toMatchObject({ code: 16 }); // UNAUTHENTICATED
  });
});

describe('restart', () => {
  it('loses no recorded decision and no issued-certificate record', async () => {
    full = await startFull();
    const first = full;
    const ids: string[] = [];
    for (const p of ['/api/orders', '/debug/pprof', '/api/orders/7']) ids.push(decisionIdOf(await first.check(checkRequest({ path: p }))));
    const certs = await first.mw.http.inject({ method: 'POST', url: '/v1/svids/jwt', headers: { authorization: `Bearer ${await first.workloadToken('shop', 'web')}` }, payload: { audience: ['orders'] } });
    const before = await first.api<{ items?: unknown[]; certificates?: unknown[] }>('/v1/certificates');
    await first.close({ keepFiles: true });

    full = await startFull(first.root);
    for (const id of ids) expect((await full.api(`/v1/decisions/${id}`)).status).toBe(200);
    const after = await full.api<{ items?: unknown[]; certificates?: unknown[] }>('/v1/certificates');
    expect(after.status).toBe(200);
    expect(JSON.stringify(after.body)).toBe(JSON.stringify(before.body));
    expect(certs.statusCode).toBeLessThan(500);
    const verify = await full.api<{ ok: boolean }>('/v1/decisions/verify');
    expect(verify.body.ok).toBe(true);
  });
});
