/**
 * Walks every route the full server registers: only the documented public routes answer without
 * credentials; every other one answers 401 (missing vs invalid token told apart) before reading or
 * validating the body, and 403 to a valid token of a role it does not grant, before validation.
 */
import net from 'node:net';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_ROUTES, registeredRoutes } from '../../src/api/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir } from '../helpers/config.ts';

let mw: Meshward;
let dir: string;
beforeAll(async () => {
  dir = tempDir('mw-route-walk-');
  mw = await createMeshward(
    { configDir: 'policies', dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry() },
  );
  await mw.start();
}, 60_000);
afterAll(async () => {
  await mw?.stop();
  removeDir(dir);
});

/** Which roles each authenticated route grants (admin is granted everything). `workload`: a workload token, not an API token. */
const GRANTS: Record<string, readonly string[]> = {
  'GET /v1/config': ['operator', 'auditor'],
  'POST /v1/config/reload': ['operator'],
  'GET /v1/certificates': ['auditor'],
  'GET /v1/ca': ['operator'],
  'POST /v1/ca/rotate': [],
  'POST /v1/svids/jwt': ['workload'],
  'GET /v1/decisions': ['auditor'],
  'GET /v1/decisions/export': ['auditor'],
  'GET /v1/decisions/stats': ['auditor'],
  'GET /v1/decisions/verify': ['auditor'],
  'GET /v1/decisions/:id': ['auditor'],
  'GET /v1/audit/checkpoints': ['auditor'],
  'POST /v1/authz/check': ['operator'],
  'GET /v1/quotas/:key': ['operator', 'auditor'],
  'POST /v1/quotas/:key': ['operator'],
  'GET /v1/quota-adjustments': ['operator', 'auditor'],
  'GET /v1/proxies': ['operator', 'auditor'],
  'GET /v1/proxies/:nodeId/config': ['operator', 'auditor'],
};

/** A request that would fail validation or parsing if it got that far: bad JSON, bad parameters. */
function probe(method: string, url: string, authorization?: string): Promise<LightMyRequestResponse> {
  const concrete = url.replace(/:[a-zA-Z]+/g, 'x') + '?limit=-5&validAt=garbage';
  return mw.http.inject({
    method: method as 'GET',
    url: concrete,
    headers: { ...(authorization ? { authorization } : {}), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    ...(method === 'POST' ? { payload: '{"not json' } : {}),
  });
}

const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

describe('HTTP API routes and credentials', () => {
  it('answers without credentials on exactly the documented public routes', async () => {
    const routes = registeredRoutes(mw.http);
    expect(routes.length).toBeGreaterThan(15);
    const open: string[] = [];
    for (const r of routes) if ((await probe(r.method, r.url)).statusCode !== 401) open.push(key(r));
    expect(open.sort()).toEqual(Object.keys(PUBLIC_ROUTES).sort());
  });

  it('knows every authenticated route in this test (a new route must be added to GRANTS)', () => {
    const authenticated = registeredRoutes(mw.http).map(key).filter((k) => !(k in PUBLIC_ROUTES));
    expect(authenticated.sort()).toEqual(Object.keys(GRANTS).sort());
  });

  it('answers 401 "required" without a token and 401 "not valid" with a wrong one, before any schema detail', async () => {
    for (const r of registeredRoutes(mw.http).filter((x) => !(key(x) in PUBLIC_ROUTES))) {
      const missing = await probe(r.method, r.url);
      expect(missing.statusCode, key(r)).toBe(401);
      expect(missing.json().code, key(r)).toBe('UNAUTHENTICATED');
      const wrong = await probe(r.method, r.url, 'Bearer mw_wrong-token');
      expect(wrong.statusCode, key(r)).toBe(401);
      expect(wrong.json().code, key(r)).toBe('UNAUTHENTICATED');
      expect(wrong.json().message, key(r)).not.toMatch(/is required/);
      if (!GRANTS[key(r)]!.includes('workload')) {
        expect(missing.json().message, key(r)).toMatch(/a bearer token is required/);
        expect(wrong.json().message, key(r)).toMatch(/not valid/);
      }
    }
  });

  it('answers 403 before any schema detail to a valid token of a role the route does not grant, and lets granted roles through', async () => {
    for (const role of ['operator', 'auditor'] as const) {
      const authorization = `Bearer ${mw.apiAuth.createToken(`walk-${role}`, role)}`;
      for (const r of registeredRoutes(mw.http).filter((x) => !(key(x) in PUBLIC_ROUTES))) {
        const grants = GRANTS[key(r)]!;
        const res = await probe(r.method, r.url, authorization);
        const where = `${role} ${key(r)}`;
        if (grants.includes('workload')) expect(res.statusCode, where).toBe(401);
        else if (grants.includes(role)) expect([401, 403], where).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, where).toBe(403);
          expect(res.json(), where).toEqual({ code: 'PERMISSION_DENIED', message: expect.not.stringMatching(/must|body|querystring|params/) });
        }
      }
    }
  });
});

describe('HTTP API errors in the catalog shape', () => {
  const admin = () => ({ authorization: `Bearer ${mw.apiAuth.createToken(`errors-${Math.random()}`, 'admin')}` });

  it('answers an unknown route with NOT_FOUND', async () => {
    const res = await mw.http.inject({ url: '/v1/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ code: 'NOT_FOUND', message: 'no endpoint GET /v1/nope (the API is described at /openapi.json)' });
  });

  it('answers a body that is not JSON with INVALID_ARGUMENT, not fastify\'s code', async () => {
    const res = await mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { ...admin(), 'content-type': 'application/json' }, payload: '{"bad' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'INVALID_ARGUMENT', message: 'the request body is not valid JSON' });
  });

  it('answers an unsupported content type with UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await mw.http.inject({ method: 'POST', url: '/v1/authz/check', headers: { ...admin(), 'content-type': 'text/csv' }, payload: 'a,b' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'content-type "text/csv" is not supported (send application/json)' });
  });

  it('answers a body over 1 MiB with PAYLOAD_TOO_LARGE', async () => {
    const res = await mw.http.inject({ method: 'POST', url: '/v1/authz/check', headers: { ...admin(), 'content-type': 'application/json' }, payload: JSON.stringify({ attributes: { x: 'a'.repeat(1024 * 1024) } }) });
    expect(res.statusCode).toBe(413);
    expect(res.json().code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('answers a URL with bad percent-encoding with INVALID_ARGUMENT', async () => {
    const res = await mw.http.inject({ url: '/v1/decisions/%zz', headers: admin() });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'INVALID_ARGUMENT', message: 'the URL is not valid (bad percent-encoding)' });
  });

  it('answers a request that is not HTTP with INVALID_ARGUMENT', async () => {
    const { host, port } = splitHostPort(mw.addresses.http);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const socket = net.connect(port, host, () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {});
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ code: 'INVALID_ARGUMENT', message: 'the request is not valid HTTP' });
  });

  it('answers a schema violation with INVALID_ARGUMENT to an authorised caller', async () => {
    const res = await mw.http.inject({ method: 'POST', url: '/v1/authz/check', headers: { ...admin(), 'content-type': 'application/json' }, payload: '{"wrong":1}' });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('INVALID_ARGUMENT');
  });
});
