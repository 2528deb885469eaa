/**
 * Issue 13 item 4: request-normalization bypasses of `DENY paths: ["/admin/*"]` and of a DENY on
 * `DELETE`, over gRPC, under each Mesh path normalization option.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PathNormalization } from '../../src/authz/path-normalization.ts';
import { checkRequest, type Harness, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

const ROOT = 'meshward-system';
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const ORDERS = 'spiffe://cluster.local/ns/shop/sa/orders';

const POLICIES = [
  yamlDoc('AuthorizationPolicy', 'deny-admin', ROOT, 'action: DENY\nrules:\n  - to:\n      - operation: { paths: ["/admin/*"] }'),
  yamlDoc('AuthorizationPolicy', 'deny-delete', ROOT, 'action: DENY\nrules:\n  - to:\n      - operation: { methods: [DELETE] }'),
  // `orders` allows a positive list only, which is also how a case-insensitive DENY is written.
  yamlDoc('AuthorizationPolicy', 'orders-api', 'shop', 'selector: { matchLabels: { app: orders } }\nrules:\n  - to:\n      - operation: { paths: ["/api/orders", "/api/orders/{*}"] }'),
].join('---\n');

const mesh = (mode: PathNormalization) => yamlDoc('Mesh', 'mesh', ROOT, `pathNormalization: { normalization: ${mode} }`);

const BYPASSES = ['/admin\\x', '/admin%2Fx', '/admin%5Cx', '/x/..%2fadmin/y', '/admin;x/y', '/;/admin/x', '/public/..;/admin/x', '/admin/x'];
/** Legitimate paths on `web` (only the DENY policies apply there). */
const LEGIT = ['/public/x', '/administrator/x', '/adminx', '/admin', '/public/a%2Fb', '/public;v=1/x', '/x/../public/y', '/public/%2e%2e;x/y'];

/** Requests to `orders` whose outcome depends on the option: path → allowed under NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES. */
const DIFFERS: [string, boolean, boolean, boolean, boolean][] = [
  ['/api/orders/1', true, true, true, true],
  ['/api//orders', false, false, true, true],
  ['/api/x/../orders', false, true, true, true],
  ['/api/orders/a%2Fb', true, true, true, false],
  ['/api\\orders', false, true, true, true],
  ['/ADMIN/x', false, false, false, false],
  ['/api/orders/..%2f..%2fadmin', true, true, true, false],
];

const MODES: PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

describe.each(MODES.map((m, i) => [m, i] as const))('path normalization %s', (mode, column) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': POLICIES, 'mesh.yaml': mesh(mode) });
  });
  afterAll(async () => h.close());

  const code = async (over: Parameters<typeof checkRequest>[0]) => (await h.check(checkRequest(over))).status.code;

  for (const path of BYPASSES) {
    it(`denies ${path} through DENY /admin/*`, async () => {
      expect(await code({ destination: WEB, path })).toBe(status.PERMISSION_DENIED);
    });
  }

  it('still allows legitimate paths next to the denied ones', async () => {
    for (const path of LEGIT) expect(await code({ destination: WEB, path }), path).toBe(status.OK);
  });

  it('matches ALLOW rules against the path Envoy forwards under this option', async () => {
    for (const row of DIFFERS) {
      const [path] = row;
      expect(await code({ destination: ORDERS, path }), path).toBe(row[column + 1] ? status.OK : status.PERMISSION_DENIED);
    }
  });

  it('answers 400 to a method that is not upper case, audited, and denies DELETE', async () => {
    h.records.length = 0;
    for (const method of ['delete', 'Delete']) {
      const res = await h.check(checkRequest({ destination: WEB, method, path: '/public/x' }));
      expect(res.status.code, method).toBe(status.INVALID_ARGUMENT);
      expect(res.denied_response?.status.code).toBe('BadRequest');
    }
    expect(h.records.map((r) => [r.decision, r.status, r.method])).toEqual([['bad_request', 400, 'delete'], ['bad_request', 400, 'Delete']]);
    expect(await code({ destination: WEB, method: 'DELETE', path: '/public/x' })).toBe(status.PERMISSION_DENIED);
    expect(await code({ destination: WEB, method: 'GET', path: '/public/x' })).toBe(status.OK);
  });

  it('audits the original path in the input, the matched one in path, and the reading that denied', async () => {
    h.records.length = 0;
    await h.check(checkRequest({ destination: WEB, path: '/admin;x/y?q=1' }));
    const record = h.records[0]!;
    expect(record.decision).toBe('deny');
    expect(record.path).toBe('/admin;x/y');
    expect((record.input as { attributes: { request: { http: { path: string } } } }).attributes.request.http.path).toBe('/admin;x/y?q=1');
    expect(record.reason).toBe(`denied by DENY policy ${ROOT}/deny-admin (rule 0) on the path read as /admin/y`);
  });
});
