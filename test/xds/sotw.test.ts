import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { names, node, TYPE } from './ads-client.ts';
import { ORDERS_V1_ONLY, ordersRouting, SHOP_SERVICES } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';

type Json = Record<string, unknown>;
let h: Harness;
afterEach(async () => h?.close());

const ORDERS = 'token:shop:orders';
const ordersNode = node('orders-1', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'orders', SERVICE: 'orders' });

/** Runs Envoy's initial ADS sequence: CDS, EDS for those clusters, LDS, RDS for the listeners' routes; ACKs each. */
async function initialSync(c: ReturnType<Harness['client']>): Promise<Record<string, Json>> {
  c.send({ node: ordersNode, type_url: TYPE.cds });
  const cds = await c.next();
  // clusters reference the SDS secrets: Envoy asks for them on the same stream
  c.send({ type_url: TYPE.sds, resource_names: ['default', 'ROOTCA'] });
  const sds = await c.next();
  c.send({ type_url: TYPE.sds, version_info: sds.version_info, response_nonce: sds.nonce, resource_names: ['default', 'ROOTCA'] });
  c.send({ type_url: TYPE.cds, version_info: cds.version_info, response_nonce: cds.nonce });
  const edsNames = ((cds.resources as Json[]).filter((r) => r.type === 'EDS')).map((r) => String(r.name));
  c.send({ type_url: TYPE.eds, resource_names: edsNames });
  const eds = await c.next();
  c.send({ type_url: TYPE.eds, version_info: eds.version_info, response_nonce: eds.nonce, resource_names: edsNames });
  c.send({ type_url: TYPE.lds });
  const lds = await c.next();
  c.send({ type_url: TYPE.lds, version_info: lds.version_info, response_nonce: lds.nonce });
  c.send({ type_url: TYPE.rds, resource_names: ['8080', '9090'] });
  const rds = await c.next();
  c.send({ type_url: TYPE.rds, version_info: rds.version_info, response_nonce: rds.nonce, resource_names: ['8080', '9090'] });
  return { sds, cds, eds, lds, rds };
}

describe('ADS State of the World', () => {
  it('syncs clusters, endpoints, listeners and routes of an authenticated sidecar, each versioned with the config version', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    const { cds, eds, lds, rds } = await initialSync(c);
    for (const [res, type] of [[cds, TYPE.cds], [eds, TYPE.eds], [lds, TYPE.lds], [rds, TYPE.rds]] as const) {
      expect(res.type_url).toBe(type);
      expect(res.version_info).toBe(h.xds.version);
      expect(res.nonce).toMatch(/.+/);
    }
    expect(names(cds)).toContain('outbound|8080|v2|orders.shop.svc.cluster.local');
    expect(names(cds)).toContain('inbound|8080||');
    expect(names(eds)).toContain('outbound|8080|v1|orders.shop.svc.cluster.local');
    expect(names(lds)).toEqual(expect.arrayContaining(['virtualInbound', 'virtualOutbound', '0.0.0.0_8080']));
    expect(names(rds)).toEqual(['8080', '9090']);
    const proxies = h.xds.proxies();
    expect(proxies).toHaveLength(1);
    expect(proxies[0]).toMatchObject({ nodeId: 'orders-1', namespace: 'shop', serviceAccount: 'orders', service: 'orders', spiffeId: 'spiffe://example.org/ns/shop/sa/orders', mode: 'sotw' });
    await expect.poll(() => Object.values(h.xds.proxies()[0]!.types).map((t) => t.state)).toEqual(['SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED']);
  });

  it('serves the sidecar its own certificate and the trust bundle over ADS, and pushes a rotated certificate', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('sotw', ORDERS);
    const { sds } = await initialSync(c);
    const byName = Object.fromEntries((sds!.resources as Json[]).map((r) => [r.name, r]));
    const cert = byName.default as { tls_certificate: { certificate_chain: { inline_bytes: Buffer }; private_key: { inline_bytes: Buffer } } };
    expect(cert.tls_certificate.certificate_chain.inline_bytes.toString()).toContain('spiffe://example.org/ns/shop/sa/orders');
    expect(cert.tls_certificate.private_key.inline_bytes.toString()).toContain('BEGIN PRIVATE KEY');
    expect(JSON.stringify(byName.ROOTCA)).toContain('trusted_ca');
    const rotated = h.secrets.rotate('spiffe://example.org/ns/shop/sa/orders');
    const pushed = await c.next();
    expect(pushed.type_url).toBe(TYPE.sds);
    const newCert = (pushed.resources as Json[]).find((r) => r.name === 'default') as typeof cert;
    expect(newCert.tls_certificate.private_key.inline_bytes.toString()).toBe(rotated.privateKeyPem);
    c.close();
    await expect.poll(() => h.secrets.subscribers('spiffe://example.org/ns/shop/sa/orders')).toBe(0);
  });

  it('pushes a change touching every type in Envoy safe order: CDS, EDS, LDS, RDS', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    await initialSync(c);
    h.update({
      // a new endpoint (EDS), a stricter outlier detection (CDS), a new path (RDS, and LDS: inbound routes mirror matches)
      's.yaml': SHOP_SERVICES.replace('- { address: 10.0.2.20, labels: { version: v2 } }', '- { address: 10.0.2.20, labels: { version: v2 } }\n    - { address: 10.0.2.21, labels: { version: v2 } }'),
      'r.yaml': ordersRouting(10).replace('consecutive5xxErrors: 3', 'consecutive5xxErrors: 4').replace('prefix: /api/orders', 'prefix: /api/v2/orders'),
    });
    await h.xds.push();
    const order = [];
    for (let i = 0; i < 4; i++) order.push(await c.next());
    expect(order.map((r) => r.type_url)).toEqual([TYPE.cds, TYPE.eds, TYPE.lds, TYPE.rds]);
    expect(JSON.stringify(order[1]!.resources)).toContain('10.0.2.21');
    expect(order.every((r) => r.version_info === h.xds.version)).toBe(true);
  });

  it('records a NACK with its error and does not re-send the rejected version', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.cds });
    const cds = await c.next();
    c.send({ type_url: TYPE.cds, version_info: '', response_nonce: cds.nonce, error_detail: { code: 3, message: 'cluster outbound|8080||web: bad thing' } });
    // The next response must answer this LDS request: nothing was re-sent for the NACK in between.
    c.send({ type_url: TYPE.lds });
    expect((await c.next()).type_url).toBe(TYPE.lds);
    const cdsStatus = h.xds.proxies()[0]!.types.cds;
    expect(cdsStatus.state).toBe('NACKED');
    expect(cdsStatus.nacked).toMatchObject({ error: 'cluster outbound|8080||web: bad thing' });
    expect(cdsStatus.acked).toBeUndefined();
    // A push with the same clusters (only a route changed) does not re-send CDS either.
    h.update({ 'r.yaml': ordersRouting(20) });
    await h.xds.push();
    c.send({ type_url: TYPE.rds, resource_names: ['8080'] });
    expect((await c.next()).type_url).toBe(TYPE.rds);
    expect(h.xds.proxies()[0]!.types.cds.state).toBe('NACKED');
    // Different clusters are sent again.
    h.update({ 'r.yaml': ORDERS_V1_ONLY });
    await h.xds.push();
    const after = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(after.map((r) => r.type_url)).toEqual([TYPE.cds, TYPE.lds, TYPE.rds, TYPE.cds]);
    expect(names(after[3]!)).not.toContain('outbound|8080|v2|orders.shop.svc.cluster.local');
  });

  it('ignores a request carrying a stale nonce, even with new resource names', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.rds, resource_names: ['8080'] });
    const first = await c.next();
    c.send({ type_url: TYPE.rds, response_nonce: first.nonce, version_info: first.version_info, resource_names: ['8080'] });
    c.send({ type_url: TYPE.rds, response_nonce: 'not-a-nonce-we-sent', resource_names: ['8080', '9090'] });
    c.send({ type_url: TYPE.cds });
    const next = await c.next();
    expect(next.type_url).toBe(TYPE.cds);
    expect(h.xds.proxies()[0]!.types.rds).toMatchObject({ state: 'SYNCED', acked: h.xds.version });
    // With the current nonce the same change is honoured.
    c.send({ type_url: TYPE.rds, response_nonce: first.nonce, version_info: first.version_info, resource_names: ['8080', '9090'] });
    expect(names(await c.next())).toEqual(['8080', '9090']);
  });

  it('pushes only the route when a canary weight changes', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    const before = await initialSync(c);
    h.update({ 'r.yaml': ordersRouting(40) });
    await h.xds.push();
    const pushed = await c.next();
    expect(pushed.type_url).toBe(TYPE.rds);
    expect(pushed.version_info).not.toBe(before.rds!.version_info);
    const weights = JSON.stringify(pushed.resources);
    expect(weights).toContain('"weight":{"value":60}');
    expect(weights).toContain('"weight":{"value":40}');
    // Probe: an EDS subscription change is answered next, so no CDS/EDS/LDS response was pushed in between.
    c.send({ type_url: TYPE.eds, resource_names: ['outbound|8080||web.shop.svc.cluster.local'], response_nonce: before.eds!.nonce, version_info: before.eds!.version_info });
    expect((await c.next()).type_url).toBe(TYPE.eds);
  });

  it('keeps a removed cluster until listeners and routes stop using it (make before break)', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', ORDERS);
    await initialSync(c);
    h.update({ 'r.yaml': ORDERS_V1_ONLY });
    await h.xds.push();
    const seq = [];
    for (let i = 0; i < 5; i++) seq.push(await c.next());
    expect(seq.map((r) => r.type_url)).toEqual([TYPE.cds, TYPE.eds, TYPE.lds, TYPE.rds, TYPE.cds]);
    const v2 = 'outbound|8080|v2|orders.shop.svc.cluster.local';
    expect(names(seq[0]!)).toContain(v2);
    expect(JSON.stringify(seq[3]!.resources)).not.toContain(v2);
    expect(names(seq[4]!)).not.toContain(v2);
    expect(names(seq[4]!)).toContain('outbound|8080|v1|orders.shop.svc.cluster.local');
  });

  it('refuses a stream without credentials', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('sotw');
    c.send({ node: ordersNode, type_url: TYPE.cds });
    expect((await c.failure()).code).toBe(status.UNAUTHENTICATED);
    expect(h.xds.proxies()).toEqual([]);
  });

  it('refuses every node when no authenticator is configured', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES }, { authenticator: null });
    const c = h.client('sotw', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.cds });
    expect((await c.failure()).code).toBe(status.UNAUTHENTICATED);
  });

  it('refuses a node claiming a namespace or service its credential does not prove', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const otherNs = h.client('sotw', ORDERS);
    otherNs.send({ node: node('x', { NAMESPACE: 'data', SERVICE_ACCOUNT: 'orders' }), type_url: TYPE.cds });
    expect((await otherNs.failure()).code).toBe(status.PERMISSION_DENIED);
    const otherService = h.client('sotw', 'token:shop:web');
    otherService.send({ node: node('y', { SERVICE: 'orders' }), type_url: TYPE.cds });
    const err = await otherService.failure();
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toContain('service account "orders"');
    const honest = h.client('sotw', 'token:shop:web');
    honest.send({ node: node('z', { SERVICE: 'web' }), type_url: TYPE.cds });
    expect(names(await honest.next())).toContain('inbound|8080||');
  });

  it('refuses a stream whose first request has no node', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('sotw', ORDERS);
    c.send({ type_url: TYPE.cds });
    expect((await c.failure()).code).toBe(status.INVALID_ARGUMENT);
  });
});
