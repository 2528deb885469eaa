import { credentials, type ServiceError } from '@grpc/grpc-js';
import { appendFileSync, closeSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
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

interface ConfigView { version: string; lastError?: string; rejected?: { version?: string; errors: { file: string; line: number; message: string }[] } }

async function metricLines(f: FullMeshward, name: string): Promise<string[]> {
  return (await f.mw.registry.metrics()).split('\n').filter((l) => l.startsWith(`${name}{`));
}

describe('one truth about the configuration being served', () => {
  it('reports the served version and the rejected one with its file:line when a Rego module fails to compile', async () => {
    full = await startFull();
    const f = full;
    const served = f.mw.config.current().version;
    const module = path.join(f.configDir, 'rego', 'payments.rego');
    const good = readFileSync(module, 'utf8');
    writeFileSync(module, `${good}\nallow if {\n  input.x ==\n}\n`);

    const reload = await f.mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: `Bearer ${f.adminToken}` } });
    expect(reload.statusCode).toBe(400);
    const view = (await f.api<ConfigView>('/v1/config')).body;
    // The version announced is the one ext_authz evaluates with, not the rejected one.
    expect(view.version).toBe(served);
    expect(f.mw.capability<AuthzCapability>('authz')!.version()).toBe(served);
    expect(view.rejected?.version).toMatch(/^[0-9a-f]{16}$/);
    expect(view.rejected?.version).not.toBe(served);
    expect(view.rejected?.errors[0]).toMatchObject({ file: expect.stringMatching(/rego\.yaml$/), line: 3 });
    expect(view.rejected?.errors[0]?.message).toMatch(/payments\.rego:\d+:\d+: rego_parse_error/);
    expect(view.lastError).toMatch(/rego_parse_error/);
    expect(await metricLines(f, 'meshward_config_info')).toEqual([`meshward_config_info{version="${served}"} 1`]);
    const rejectedMetric = await metricLines(f, 'meshward_config_rejected_info');
    expect(rejectedMetric).toHaveLength(1);
    expect(rejectedMetric[0]).toContain(`version="${view.rejected!.version}"`);
    expect(rejectedMetric[0]).toMatch(/location="[^"]*rego\.yaml:3"/);

    // Fixed: served again everywhere, nothing rejected.
    writeFileSync(module, good.replace('> 1000', '> 2000'));
    const fixed = await f.mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: `Bearer ${f.adminToken}` } });
    expect(fixed.statusCode).toBe(200);
    const after = (await f.api<ConfigView>('/v1/config')).body;
    expect(after.version).not.toBe(served);
    expect(after.version).toBe(f.mw.capability<AuthzCapability>('authz')!.version());
    expect(after.rejected).toBeUndefined();
    expect(after.lastError).toBeUndefined();
    expect(await metricLines(f, 'meshward_config_rejected_info')).toEqual([]);
  });
});

const ORDERS_DELETE = (methods: string) => `apiVersion: meshward.io/v1
kind: AuthorizationPolicy
metadata: { name: orders-writes-from-web, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/web"] } }]
      to: [{ operation: { methods: [${methods}], paths: ["/api/orders/*"] } }]
`;
const DENY_DELETE_ONE = `apiVersion: meshward.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-delete-order-1, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  action: DENY
  rules:
    - to: [{ operation: { methods: [DELETE], paths: ["/api/orders/1"] } }]
`;

describe('a policy file written in two chunks while meshward serve watches it', () => {
  let mw: Meshward | undefined;
  let root: string | undefined;
  afterEach(async () => {
    await mw?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
    mw = root = undefined;
  });

  it('never serves the first chunk: DELETE /api/orders/1 stays denied throughout', async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'mw-e2e-chunks-'));
    const configDir = path.join(root, 'config');
    cpSync('policies', configDir, { recursive: true });
    const file = path.join(configDir, 'orders-writes.yaml');
    writeFileSync(file, `${ORDERS_DELETE('DELETE')}---\n${DENY_DELETE_ONE}`);
    mw = await createMeshward({ configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: true }, { logger: silentLogger(), registry: createRegistry() });
    await mw.start();
    const Client = envoyService('envoy.service.auth.v3.Authorization');
    const client = new Client(mw.addresses.grpc, credentials.createInsecure()) as unknown as { Check(r: object, cb: (err: ServiceError | null, res: { status: { code: number } }) => void): void; close(): void };
    const check = (method: string, p: string) => new Promise<number>((resolve, reject) => client.Check(checkRequest({ method, path: p }), (err, res) => (err ? reject(err) : resolve(res.status.code))));
    try {
      expect(await check('DELETE', '/api/orders/1')).toBe(7);
      const first = mw.config.current().version;
      // Non-atomic rewrite: a first chunk that parses (PUT added, no DENY), a pause longer than the
      // watch debounce, then the DENY.
      const fd = openSync(file, 'w');
      writeSync(fd, ORDERS_DELETE('DELETE, PUT'));
      const answers: number[] = [];
      const until = Date.now() + 450;
      while (Date.now() < until) {
        answers.push(await check('DELETE', '/api/orders/1'));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      writeSync(fd, `---\n${DENY_DELETE_ONE}`);
      closeSync(fd);
      await expect.poll(() => mw!.config.current().version, { timeout: 10_000 }).not.toBe(first);
      expect(await check('PUT', '/api/orders/1')).toBe(0);
      answers.push(await check('DELETE', '/api/orders/1'));
      expect(answers.filter((code) => code !== 7)).toEqual([]);
    } finally {
      client.close();
    }
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
