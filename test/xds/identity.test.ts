import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { names, node, TYPE } from './ads-client.ts';
import { SHOP_SERVICES } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';

type Json = Record<string, unknown>;
let h: Harness;
afterEach(async () => h?.close());

describe('xDS node identity over the life of a stream', () => {
  it('disconnects a sidecar when its Service moves to another service account', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('sotw', 'token:shop:orders');
    c.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.cds });
    expect(names(await c.next())).toContain('inbound|8080||');
    h.update({ 's.yaml': SHOP_SERVICES.replace('serviceAccount: orders', 'serviceAccount: orders-v2') });
    await h.xds.push();
    const err = await c.failure();
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toContain('orders-v2');
    expect(h.xds.proxies()).toEqual([]);
  });

  it('ends the stream with UNAUTHENTICATED when the token it was opened with expires', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('sotw', `token:shop:orders@${h.clock.now() + 3_600_000}`);
    c.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.cds });
    expect(names(await c.next())).toContain('inbound|8080||');
    h.clock.advance(3_600_000 - 1);
    expect(h.xds.proxies()).toHaveLength(1);
    h.clock.advance(1);
    const err = await c.failure();
    expect(err.code).toBe(status.UNAUTHENTICATED);
    expect(err.details).toContain('expired');
    expect(h.xds.proxies()).toEqual([]);
  });

  it('serves only the caller\'s own certificate: another workload\'s SPIFFE ID or an unknown secret name gets nothing', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('delta', 'token:shop:web');
    c.send({ node: node('web-1', { SERVICE: 'web' }), type_url: TYPE.sds, resource_names_subscribe: ['spiffe://example.org/ns/shop/sa/payments', 'payments-key', 'default'] });
    const res = await c.next();
    expect((res.resources as Json[]).map((r) => r.name)).toEqual(['default']);
    const chain = String(((res.resources as Json[])[0]!.resource as { tls_certificate: { certificate_chain: { inline_bytes: Buffer } } }).tls_certificate.certificate_chain.inline_bytes);
    expect(chain).toContain('spiffe://example.org/ns/shop/sa/web');
    expect(chain).not.toContain('payments');
  });

  it('treats an explicit "*" as the wildcard in Delta and stops it on unsubscribe', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const c = h.client('delta', 'token:shop:web');
    c.send({ node: node('web-1', { SERVICE: 'web' }), type_url: TYPE.lds, resource_names_subscribe: ['*'] });
    const first = await c.next();
    expect((first.resources as Json[]).map((r) => r.name)).toEqual(expect.arrayContaining(['virtualInbound', 'virtualOutbound', '0.0.0.0_8080']));
    c.send({ type_url: TYPE.lds, response_nonce: first.nonce, resource_names_unsubscribe: ['*'] });
    // requests are handled in order: once CDS is answered, the unsubscribe has been applied
    c.send({ type_url: TYPE.cds });
    expect((await c.next()).type_url).toBe(TYPE.cds);
    // a new listener is no longer pushed once the wildcard is gone
    h.update({ 'n.yaml': 'apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: search, namespace: shop }\nspec:\n  serviceAccount: search\n  ports: [{ name: http, port: 7070 }]\n' });
    await h.xds.push();
    expect((await c.next()).type_url).toBe(TYPE.cds);
    c.send({ type_url: TYPE.eds, resource_names_subscribe: ['outbound|7070||search.shop.svc.cluster.local'] });
    expect((await c.next()).type_url).toBe(TYPE.eds);
  });

  it('points the ext_authz filter at the unary port only for sidecars whose bootstrap has its cluster', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const authzCluster = async (meta: Record<string, string>) => {
      const c = h.client('sotw', 'token:shop:orders');
      c.send({ node: node(`orders-${Object.keys(meta).length}`, { SERVICE: 'orders', ...meta }), type_url: TYPE.lds });
      const inbound = ((await c.next()).resources as Json[]).find((r) => r.name === 'virtualInbound')!;
      c.close();
      const hcm = ((inbound.filter_chains as Json[])[0]!.filters as Json[])[0]!.typed_config as Json;
      const authz = (hcm.http_filters as Json[]).find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config as Json;
      return ((authz.grpc_service as Json).envoy_grpc as Json).cluster_name;
    };
    expect(await authzCluster({ MESHWARD_UNARY_AUTHZ: 'true' })).toBe('meshward-unary');
    expect(await authzCluster({})).toBe('meshward');
  });
});
