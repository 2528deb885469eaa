import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability } from '../../src/audit/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createTestCa } from '../helpers/tls.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

const AUDITOR_ID = 'spiffe://cluster.local/ns/audit/sa/auditor';

function writeMesh(dir: string): void {
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), [
    'apiVersion: meshward.io/v1', 'kind: Mesh', 'metadata:', '  name: mesh', 'spec:', '  audit:',
    '    maskPaths: ["/attributes/request/http/headers/x-api-key"]', `    auditorSpiffeIds: ["${AUDITOR_ID}"]`, '',
  ].join('\n'));
}

describe('auditor API', () => {
  let dir: string;
  let mw: Meshward;
  let audit: AuditCapability;
  let tokens: Record<'auditor' | 'operator' | 'admin', string>;
  let ca: Awaited<ReturnType<typeof createTestCa>>;

  beforeAll(async () => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-api-'));
    fs.mkdirSync(path.join(dir, 'config'));
    writeMesh(path.join(dir, 'config'));
    ca = await createTestCa();
    const server = await ca.sign({ dns: ['localhost'], ip: ['127.0.0.1'] });
    for (const [name, pem] of Object.entries({ 'ca.pem': ca.certPem, 'server.pem': server.certPem, 'server-key.pem': server.keyPem })) fs.writeFileSync(path.join(dir, name), pem, { mode: 0o600 });
    mw = await createMeshward(
      { configDir: path.join(dir, 'config'), dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false,
        httpTls: { certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server-key.pem'), clientCaFile: path.join(dir, 'ca.pem') } },
      { logger: silentLogger(), registry: createRegistry(), clock: new FakeClock(T0 + 3_600_000), capabilities: [createAuditCapability] },
    );
    await mw.start();
    audit = mw.capability<AuditCapability>('audit')!;
    tokens = { auditor: mw.apiAuth.createToken('alice', 'auditor'), operator: mw.apiAuth.createToken('op', 'operator'), admin: mw.apiAuth.createToken('root', 'admin') };
    const withKey = decision({ decisionId: 'with-api-key', path: '=HYPERLINK("http://evil")' });
    (withKey.input as { attributes: { request: { http: { headers: Record<string, string> } } } }).attributes.request.http.headers['x-api-key'] = 'key-123';
    audit.append(withKey);
    audit.append(decision({ decision: 'allow', status: 200, path: '/public/a' }));
    audit.append(decision({ decision: 'allow', status: 200, path: '/public/b', sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/cart' }));
    audit.append(decision({ decision: 'unauthenticated', status: 401, time: T0 + 120_000 }));
    audit.append(decision({ decision: 'deny', configVersion: 'v2', time: T0 + 121_000 }));
    await audit.flush();
  });

  afterAll(async () => {
    await mw.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = (url: string, token?: string) => mw.http.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });

  it.each(['/v1/decisions', '/v1/decisions/with-api-key', '/v1/decisions/export', '/v1/decisions/stats', '/v1/decisions/verify'])('%s: 401 without credentials, 403 for an operator, 200 for auditors and admins', async (url) => {
    const anonymous = await get(url);
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await get(url, 'mw_not-a-token')).statusCode).toBe(401);
    const operator = await get(url, tokens.operator);
    expect(operator.statusCode).toBe(403);
    expect(operator.json()).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await get(url, tokens.auditor)).statusCode).toBe(200);
    expect((await get(url, tokens.admin)).statusCode).toBe(200);
  });

  it('lists newest first and filters by decision, principal, path prefix and config version', async () => {
    const all = (await get('/v1/decisions', tokens.auditor)).json();
    expect(all.records.map((r: { seq: number }) => r.seq)).toEqual([5, 4, 3, 2, 1]);
    expect(all.nextCursor).toBeUndefined();
    const seqs = async (qs: string) => (await get(`/v1/decisions?${qs}`, tokens.auditor)).json().records.map((r: { seq: number }) => r.seq);
    expect(await seqs('decision=allow')).toEqual([3, 2]);
    expect(await seqs('decision=deny,unauthenticated')).toEqual([5, 4, 1]);
    expect(await seqs(`principal=${encodeURIComponent('spiffe://cluster.local/ns/shop/sa/cart')}`)).toEqual([3]);
    expect(await seqs('pathPrefix=/public/')).toEqual([2, 3].reverse());
    expect(await seqs('configVersion=v2')).toEqual([5]);
    expect(await seqs('policy=shop/orders-allow-web&decision=deny')).toEqual([5, 1]);
    expect(await seqs(`from=${new Date(T0 + 60_000).toISOString()}`)).toEqual([5, 4]);
    expect(await seqs(`to=${T0 + 60_000}&order=asc`)).toEqual([1, 2, 3]);
  });

  it('pages with an opaque cursor', async () => {
    const first = (await get('/v1/decisions?limit=2', tokens.auditor)).json();
    expect(first.records.map((r: { seq: number }) => r.seq)).toEqual([5, 4]);
    const second = (await get(`/v1/decisions?limit=2&cursor=${first.nextCursor}`, tokens.auditor)).json();
    expect(second.records.map((r: { seq: number }) => r.seq)).toEqual([3, 2]);
    const third = (await get(`/v1/decisions?limit=2&cursor=${second.nextCursor}`, tokens.auditor)).json();
    expect(third).toEqual({ records: [expect.objectContaining({ seq: 1 })] });
  });

  it('returns one record by decision id, masked, with its chain hashes', async () => {
    const res = await get('/v1/decisions/with-api-key', tokens.auditor);
    const body = res.json();
    expect(body).toMatchObject({ seq: 1, decisionId: 'with-api-key', decision: 'deny', prevHash: '0'.repeat(64), masked: ['/input/attributes/request/http/headers/authorization', '/input/attributes/request/http/headers/x-api-key'] });
    expect(body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(res.body).not.toContain('secret-token');
    expect(res.body).not.toContain('key-123');
    expect(body.input.attributes.request.http.headers.authorization).toBe('[REDACTED]');
  });

  it('answers 404 AUDIT_RECORD_NOT_FOUND for an unknown id', async () => {
    const res = await get('/v1/decisions/nope', tokens.auditor);
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'AUDIT_RECORD_NOT_FOUND' });
  });

  it.each([
    ['decision=maybe', 'decision'],
    ['cursor=garbage', 'cursor'],
    ['form=1h', 'form'],
    ['from=yesterday-ish', 'from'],
    ['from=1000&to=10', 'from'],
  ])('answers 400 AUDIT_INVALID_QUERY for %s', async (qs, parameter) => {
    const res = await get(`/v1/decisions?${qs}`, tokens.auditor);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'AUDIT_INVALID_QUERY', message: expect.stringContaining(parameter) });
  });

  it('rejects a page size over the maximum', async () => {
    expect((await get('/v1/decisions?limit=5000', tokens.auditor)).statusCode).toBe(400);
  });

  it('streams an NDJSON export, oldest first, honouring filters', async () => {
    const res = await get('/v1/decisions/export?decision=allow,deny', tokens.auditor);
    expect(res.headers['content-type']).toBe('application/x-ndjson');
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 5]);
    expect(res.body).not.toContain('secret-token');
  });

  it('streams a CSV export with spreadsheet formulas neutralized', async () => {
    const res = await get('/v1/decisions/export?format=csv&limit=2', tokens.auditor);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    const rows = res.body.trim().split('\r\n');
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/^seq,time,decisionId,decision,status,reason,/);
    expect(rows[1]).toContain(`"'=HYPERLINK(""http://evil"")"`);
    expect(rows[2]).toContain(',allow,200,');
  });

  it('counts decisions per interval', async () => {
    const res = await get(`/v1/decisions/stats?from=${T0}&to=${T0 + 180_000}&interval=1m`, tokens.auditor);
    expect(res.json()).toEqual({
      from: new Date(T0).toISOString(), to: new Date(T0 + 180_000).toISOString(), intervalMs: 60_000, total: 5,
      intervals: [
        { start: new Date(T0).toISOString(), total: 3, counts: { allow: 2, deny: 1 } },
        { start: new Date(T0 + 120_000).toISOString(), total: 2, counts: { deny: 1, unauthenticated: 1 } },
      ],
    });
    expect((await get(`/v1/decisions/stats?from=${T0}&to=${T0 + 86_400_000 * 365}&interval=1s`, tokens.auditor)).statusCode).toBe(400);
  });

  it('verifies the chain', async () => {
    expect((await get('/v1/decisions/verify', tokens.auditor)).json()).toMatchObject({ ok: true, checked: 5, findings: [] });
  });

  it('documents the routes in the OpenAPI description', async () => {
    const spec = (await mw.http.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/decisions', '/v1/decisions/{id}', '/v1/decisions/export', '/v1/decisions/stats', '/v1/decisions/verify']));
    expect(spec.paths['/v1/decisions'].get.security).toEqual([{ bearer: [] }]);
  });

  describe('over HTTPS with client certificates', () => {
    const request = (opts: https.RequestOptions) => new Promise<number>((resolve, reject) => {
      https.get(`https://${mw.addresses.http}/v1/decisions?limit=1`, { ca: ca.certPem, ...opts }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    });

    it('accepts a certificate whose SPIFFE ID is a configured auditor', async () => {
      const cert = await ca.sign({ uri: AUDITOR_ID });
      expect(await request({ cert: cert.certPem, key: cert.keyPem })).toBe(200);
    });

    it('refuses a certificate with another SPIFFE ID, a certificate from another CA, and no certificate', async () => {
      const other = await ca.sign({ uri: 'spiffe://cluster.local/ns/shop/sa/web' });
      expect(await request({ cert: other.certPem, key: other.keyPem })).toBe(401);
      const foreign = await (await createTestCa('foreign CA')).sign({ uri: AUDITOR_ID });
      expect(await request({ cert: foreign.certPem, key: foreign.keyPem })).toBe(401);
      expect(await request({})).toBe(401);
    });
  });
});
