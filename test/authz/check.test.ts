/** ext_authz over gRPC with a real grpc-js client on the official Envoy protos. */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { checkRequest, type Harness, headerOf, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

const ROOT = 'meshward-system';
const POLICIES = [
  yamlDoc('AuthorizationPolicy', 'deny-debug', ROOT, 'action: DENY\nrules:\n  - to:\n      - operation: { paths: ["/debug/*"] }'),
  yamlDoc('AuthorizationPolicy', 'orders-from-web', 'shop', [
    'selector: { matchLabels: { app: orders } }',
    'rules:',
    '  - from:',
    '      - source: { principals: ["cluster.local/ns/shop/sa/web"] }',
    '    to:',
    '      - operation: { methods: [GET, POST], paths: ["/api/orders", "/api/orders/*"] }',
  ].join('\n')),
].join('---\n');

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const decisionIdOf = (res: { dynamic_metadata?: { fields: Record<string, { stringValue?: string }> } }) => res.dynamic_metadata?.fields.decision_id?.stringValue;

describe('Check', () => {
  it('allows a request an ALLOW policy matches, with a decision_id and an audit record', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const res = await h.check(checkRequest());
    expect(res.status.code).toBe(status.OK);
    expect(res.ok_response).toBeDefined();
    const id = decisionIdOf(res);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.records).toHaveLength(1);
    expect(h.records[0]).toMatchObject({
      decisionId: id, decision: 'allow', status: 200, configVersion: h.mw.config.current().version,
      sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web', destination: 'shop/orders', method: 'GET', path: '/api/orders', requestId: 'req-1',
      matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'orders-from-web', action: 'ALLOW', rule: 0, effect: 'allow' }],
    });
  });

  it('denies a request whose principal is not listed with 403 and a JSON body', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const res = await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder' }));
    expect(res.status.code).toBe(status.PERMISSION_DENIED);
    expect(res.denied_response?.status.code).toBe('Forbidden');
    expect(headerOf(res.denied_response?.headers, 'content-type')).toBe('application/json');
    const body = JSON.parse(res.denied_response!.body) as { code: number; message: string; decision_id: string };
    expect(body).toEqual({ code: 403, message: 'access denied', decision_id: decisionIdOf(res) });
    expect(h.records[0]).toMatchObject({ decision: 'deny', status: 403, reason: 'no ALLOW policy matched' });
  });

  it('denies a debug path on every workload through the mesh-wide DENY policy', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const onWeb = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web', path: '/debug/pprof' }));
    expect(onWeb.status.code).toBe(status.PERMISSION_DENIED);
    const webRoot = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web', path: '/' }));
    expect(webRoot.status.code).toBe(status.OK);
    expect(h.records[0]!.matchedPolicies).toEqual([{ kind: 'AuthorizationPolicy', namespace: ROOT, name: 'deny-debug', action: 'DENY', rule: 0, effect: 'deny' }]);
  });

  it('matches paths after normalisation and rejects a NUL byte with 400', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const sneaky = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web', path: '/api/..//debug/%70prof' }));
    expect(sneaky.status.code).toBe(status.PERMISSION_DENIED);
    const nul = await h.check(checkRequest({ path: '/api/orders%00.json' }));
    expect(nul.status.code).toBe(status.INVALID_ARGUMENT);
    expect(nul.denied_response?.status.code).toBe('BadRequest');
    expect(h.records[1]).toMatchObject({ decision: 'bad_request', status: 400 });
  });

  it('selects a policy per route through context_extensions', async () => {
    const routePolicy = yamlDoc('AuthorizationPolicy', 'admin-route', 'shop', [
      'selector: { matchLabels: { app: orders } }',
      'action: DENY',
      'contextExtensions: { route: admin }',
      'rules:',
      '  - from:',
      '      - source: { notPrincipals: ["cluster.local/ns/shop/sa/admin"] }',
    ].join('\n'));
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': `${POLICIES}---\n${routePolicy}` });
    expect((await h.check(checkRequest({ contextExtensions: { route: 'admin' } }))).status.code).toBe(status.PERMISSION_DENIED);
    expect((await h.check(checkRequest({ contextExtensions: { route: 'orders-api' } }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest())).status.code).toBe(status.OK);
  });

  it('evaluates and records a dry-run policy without enforcing it', async () => {
    const dry = yamlDoc('AuthorizationPolicy', 'lockdown', 'shop', 'selector: { matchLabels: { app: orders } }\naction: DENY\ndryRun: true\nrules:\n  - {}');
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': `${POLICIES}---\n${dry}` });
    const res = await h.check(checkRequest());
    expect(res.status.code).toBe(status.OK);
    expect(h.records[0]!.decision).toBe('allow');
    expect(h.records[0]!.matchedPolicies).toContainEqual({ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'lockdown', action: 'DENY', rule: 0, dryRun: true, effect: 'deny' });
  });

  it('records AUDIT policies without changing the outcome', async () => {
    const audit = yamlDoc('AuthorizationPolicy', 'audit-writes', 'shop', 'action: AUDIT\nrules:\n  - to:\n      - operation: { methods: [POST] }');
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': `${POLICIES}---\n${audit}` });
    expect((await h.check(checkRequest({ method: 'POST' }))).status.code).toBe(status.OK);
    expect(h.records[0]!.matchedPolicies).toContainEqual({ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'audit-writes', action: 'AUDIT', rule: 0, effect: 'audit' });
  });

  it('uses the new policies after a config reload and stamps the new version', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const before = h.mw.config.current().version;
    expect((await h.check(checkRequest({ method: 'DELETE', path: '/api/orders/1' }))).status.code).toBe(status.PERMISSION_DENIED);
    h.writeConfig({ 'more.yaml': yamlDoc('AuthorizationPolicy', 'deletes', 'shop', 'selector: { matchLabels: { app: orders } }\nrules:\n  - to:\n      - operation: { methods: [DELETE] }') });
    await h.mw.config.reload();
    await h.authz.recompile();
    const after = h.mw.config.current().version;
    expect(after).not.toBe(before);
    expect((await h.check(checkRequest({ method: 'DELETE', path: '/api/orders/1' }))).status.code).toBe(status.OK);
    expect(h.records.map((r) => r.configVersion)).toEqual([before, after]);
  });

  it('counts decisions and times stages in metrics', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    await h.check(checkRequest());
    await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder' }));
    const text = await h.mw.registry.metrics();
    expect(text).toMatch(/meshward_authz_checks_total\{decision="allow"\} 1/);
    expect(text).toMatch(/meshward_authz_checks_total\{decision="deny"\} 1/);
    expect(text).toMatch(/meshward_authz_stage_duration_seconds_count\{stage="authorize"\} 2/);
  });

  it('serves without an audit capability', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES }, { audit: false });
    expect((await h.check(checkRequest())).status.code).toBe(status.OK);
  });

  it('allows everything for a workload no policy applies to', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES });
    const res = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/other/sa/thing', source: 'spiffe://cluster.local/ns/x/sa/y' }));
    expect(res.status.code).toBe(status.OK);
    expect(h.records[0]).toMatchObject({ destination: 'other/thing', decision: 'allow' });
  });
});

describe('Check transport', () => {
  const withoutIds = (res: object) => JSON.parse(JSON.stringify(res).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'ID')) as object;
  const requests = [
    checkRequest(),
    checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/intruder' }),
    checkRequest({ path: '/debug/x\u0000' }),
    checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' }),
  ];

  async function answers(grpcFastPath: boolean): Promise<{ fastPaths: readonly string[]; responses: object[] }> {
    const harness = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES }, { grpcFastPath });
    try {
      const responses: object[] = [];
      for (const r of requests) responses.push(withoutIds(await harness.check(r)));
      return { fastPaths: harness.mw.grpcFastPaths, responses };
    } finally {
      await harness.close();
    }
  }

  it('serves Check on the HTTP/2 fast path with the same answers grpc-js gives', async () => {
    const fast = await answers(true);
    const viaGrpcJs = await answers(false);
    expect(fast.fastPaths).toEqual(['/envoy.service.auth.v3.Authorization/Check']);
    expect(viaGrpcJs.fastPaths).toEqual([]);
    expect(fast.responses.map((r) => (r as { status: { code: number } }).status.code)).toEqual([status.OK, status.PERMISSION_DENIED, status.INVALID_ARGUMENT, status.INVALID_ARGUMENT]);
    expect(fast.responses).toEqual(viaGrpcJs.responses);
  });

  it('answers an internal failure with the same gRPC status and error code on both paths', async () => {
    for (const grpcFastPath of [true, false]) {
      h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES }, { grpcFastPath });
      h.authz.addStage({ name: 'explode', compile: () => ({ name: 'explode', run: () => { throw new Error('boom'); } }) });
      await h.authz.recompile();
      const err = await h.check(checkRequest()).catch((e: { code: number; details: string; metadata: { get(k: string): unknown[] } }) => e);
      expect(err).toMatchObject({ code: status.INTERNAL });
      expect((err as { metadata: { get(k: string): unknown[] } }).metadata.get('meshward-error-code')).toEqual(['AUTHZ_STAGE_FAILED']);
      await h.close();
      h = undefined;
    }
  });
});
