/**
 * ext_authz → audit end to end: real CheckRequests over gRPC, records read back through the
 * auditor API, masked, chained, and still there after a restart.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability } from '../../src/audit/index.ts';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { type CheckResponse, checkRequest, SERVICES, yamlDoc } from '../authz/helpers.ts';

const ALLOW_WEB = yamlDoc('AuthorizationPolicy', 'orders-allow-web', 'shop', `
selector: { matchLabels: { app: orders } }
action: ALLOW
rules:
  - from:
      - source: { principals: ["cluster.local/ns/shop/sa/web"] }`);
const MESH = 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  audit:\n    maskPaths: ["/attributes/request/http/headers/x-api-key"]\n';

describe('ext_authz decisions in the audit store', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-e2e-'));
  const configDir = path.join(root, 'config');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'services.yaml'), SERVICES);
  fs.writeFileSync(path.join(configDir, 'authz.yaml'), ALLOW_WEB);
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), MESH);
  const running: Meshward[] = [];
  afterAll(async () => {
    await Promise.all(running.map((m) => m.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function start(): Promise<Meshward> {
    const mw = await createMeshward(
      { configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), clock: new FakeClock(Date.UTC(2026, 0, 1)), capabilities: [createAuditCapability, createAuthzCapability] },
    );
    await mw.start();
    running.push(mw);
    return mw;
  }

  function check(mw: Meshward, request: object): Promise<CheckResponse> {
    const Client = envoyService('envoy.service.auth.v3.Authorization');
    const client = new Client(mw.addresses.grpc, credentials.createInsecure()) as unknown as { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void; close(): void };
    return new Promise<CheckResponse>((resolve, reject) => client.Check(request, (err, res) => { client.close(); return err ? reject(err) : resolve(res); }));
  }

  it('records allowed and denied checks, masked and chained, readable by an auditor, across a restart', async () => {
    const mw = await start();
    const allowed = await check(mw, checkRequest({ headers: { authorization: 'Bearer top-secret', 'x-api-key': 'key-123' } }));
    const denied = await check(mw, checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder', path: '/api/orders/9' }));
    expect(allowed.status.code).toBe(0);
    expect(denied.status.code).toBe(7);
    const allowedId = allowed.dynamic_metadata!.fields.decision_id!.stringValue!;
    const deniedId = denied.dynamic_metadata!.fields.decision_id!.stringValue!;
    await mw.capability<AuditCapability>('audit')!.flush();

    const token = mw.apiAuth.createToken('alice', 'auditor');
    const get = (url: string) => mw.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
    const allowRecord = (await get(`/v1/decisions/${allowedId}`)).json();
    expect(allowRecord).toMatchObject({ decision: 'allow', status: 200, sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web', matchedPolicies: [expect.objectContaining({ name: 'orders-allow-web' })] });
    expect(allowRecord.input.attributes.request.http.headers.authorization).toBe('[REDACTED]');
    expect(allowRecord.input.attributes.request.http.headers['x-api-key']).toBeUndefined();
    expect(JSON.stringify(allowRecord)).not.toMatch(/top-secret|key-123/);
    const denyPage = (await get('/v1/decisions?decision=deny')).json();
    expect(denyPage.records.map((r: { decisionId: string }) => r.decisionId)).toEqual([deniedId]);
    await mw.stop();

    const again = await start();
    const token2 = again.apiAuth.createToken('bob', 'auditor');
    const verify = (await again.http.inject({ method: 'GET', url: '/v1/decisions/verify', headers: { authorization: `Bearer ${token2}` } })).json();
    expect(verify).toMatchObject({ ok: true, checked: 2 });
  });
});
