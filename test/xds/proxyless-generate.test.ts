/** What meshward's ADS serves a proxyless gRPC node (and does not serve an Envoy sidecar). */
import { afterEach, describe, expect, it } from 'vitest';
import { names, node, TYPE } from './ads-client.ts';
import { ordersRouting, SHOP_SERVICES, snapshotOf } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';
import path from 'node:path';
import * as grpcXds from '@grpc/grpc-js-xds';
import { ClusterResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js';
import { EndpointResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js';
import { ListenerResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js';
import { RouteConfigurationResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js';
import { type CliIo, runCli } from '../../src/cli/index.ts';
import { createSnapshot, loadConfigDir } from '../../src/config/index.ts';
import { compileModel } from '../../src/xds/generate/index.ts';
import { proxylessClusters, proxylessListenersAndRoutes } from '../../src/xds/generate/proxyless.ts';
import { buildSnapshot } from '../../src/xds/resources.ts';
import { renderGrpcBootstrap } from '../../src/xds/index.ts';

type Json = Record<string, unknown>;
let h: Harness;
afterEach(async () => h?.close());

const ORDERS_HOST = 'orders.shop.svc.cluster.local:8080';
const grpcNode = (ns: string) => node(`grpc-client~${ns}`, { NAMESPACE: ns, GENERATOR: 'grpc' });

describe('proxyless gRPC resources', () => {
  it('serves a gRPC node the API listener it names, its routes, plaintext ROUND_ROBIN EDS clusters and weighted localities', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', 'token:shop:web');
    c.send({ node: grpcNode('shop'), type_url: TYPE.lds, resource_names: [ORDERS_HOST] });
    const lds = await c.next();
    expect(names(lds)).toEqual([ORDERS_HOST]);
    const hcm = ((lds.resources as Json[])[0]!.api_listener as { api_listener: Json }).api_listener;
    expect(hcm.rds).toMatchObject({ config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: ORDERS_HOST });
    expect((hcm.http_filters as { name: string }[]).at(-1)!.name).toBe('envoy.filters.http.router');

    c.send({ type_url: TYPE.rds, resource_names: [ORDERS_HOST] });
    const rds = await c.next();
    const vhost = ((rds.resources as Json[])[0]!.virtual_hosts as Json[])[0]!;
    expect(vhost.domains).toContain(ORDERS_HOST);
    const canary = (vhost.routes as { name: string; route: { weighted_clusters?: { clusters: { name: string; weight: { value: number } }[] } } }[]).find((r) => r.name === 'canary')!;
    expect(canary.route.weighted_clusters!.clusters).toEqual([
      { name: 'outbound|8080|v1|orders.shop.svc.cluster.local', weight: { value: 90 } },
      { name: 'outbound|8080|v2|orders.shop.svc.cluster.local', weight: { value: 10 } },
    ]);

    const cluster = 'outbound|8080|v2|orders.shop.svc.cluster.local';
    c.send({ type_url: TYPE.cds, resource_names: [cluster] });
    const [cds] = (await c.next()).resources as Json[];
    // The TrafficPolicy says LEAST_REQUEST, which gRPC refuses: served as ROUND_ROBIN, and no SDS-based TLS.
    expect(cds).toMatchObject({ name: cluster, type: 'EDS', lb_policy: 'ROUND_ROBIN', eds_cluster_config: { eds_config: { ads: {} }, service_name: cluster } });
    expect(cds!.transport_socket).toBeUndefined();

    c.send({ type_url: TYPE.eds, resource_names: [cluster] });
    const [cla] = (await c.next()).resources as Json[];
    expect((cla!.endpoints as Json[])[0]).toMatchObject({ locality: {}, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.2.20', port_value: 8081 } } } }] });
  });

  it('gives short names only to clients of the same namespace', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const inShop = h.client('sotw', 'token:shop:web');
    inShop.send({ node: grpcNode('shop'), type_url: TYPE.lds, resource_names: ['orders:8080', 'orders.shop:8080'] });
    expect(names(await inShop.next()).sort()).toEqual(['orders.shop:8080', 'orders:8080']);
    const elsewhere = h.client('sotw', 'token:data:db');
    elsewhere.send({ node: grpcNode('data'), type_url: TYPE.lds, resource_names: ['orders:8080', 'orders.shop:8080'] });
    expect(names(await elsewhere.next())).toEqual(['orders.shop:8080']);
  });

  it('does not give API listeners or proxyless clusters to an Envoy sidecar', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('sotw', 'token:shop:web');
    c.send({ node: node('web-1', { NAMESPACE: 'shop' }), type_url: TYPE.lds });
    const lds = await c.next();
    expect(names(lds)).toContain('virtualOutbound');
    expect(names(lds)).not.toContain(ORDERS_HOST);
    expect((lds.resources as Json[]).every((l) => l.api_listener === undefined || l.api_listener === null)).toBe(true);
    c.send({ type_url: TYPE.cds, resource_names: [] });
    const cds = (await c.next()).resources as Json[];
    expect(cds.find((x) => x.name === 'outbound|8080|v2|orders.shop.svc.cluster.local')!.transport_socket).toBeDefined();
  });

  it('issues no SVID for a gRPC node (it cannot use SDS secrets), while a sidecar of the same account gets one', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const spiffeId = 'spiffe://example.org/ns/shop/sa/web';
    const g = h.client('sotw', 'token:shop:web');
    g.send({ node: grpcNode('shop'), type_url: TYPE.lds, resource_names: [ORDERS_HOST] });
    await g.next();
    expect(h.secrets.subscribers(spiffeId)).toBe(0);
    const sidecar = h.client('sotw', 'token:shop:web');
    sidecar.send({ node: node('web-1', { NAMESPACE: 'shop' }), type_url: TYPE.lds });
    await sidecar.next();
    expect(h.secrets.subscribers(spiffeId)).toBe(1);
  });

  it('recognises a gRPC library by its user agent, and an Envoy by its own', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const grpcJs = h.client('sotw', 'token:shop:web');
    grpcJs.send({ node: { ...node('grpc-js-1', { NAMESPACE: 'shop' }), user_agent_name: 'gRPC Node Pure JS' }, type_url: TYPE.lds, resource_names: [ORDERS_HOST] });
    expect(names(await grpcJs.next())).toEqual([ORDERS_HOST]);
    const envoy = h.client('sotw', 'token:shop:web');
    envoy.send({ node: { ...node('envoy-1', { NAMESPACE: 'shop' }), user_agent_name: 'envoy' }, type_url: TYPE.lds, resource_names: [ORDERS_HOST] });
    expect(names(await envoy.next())).toEqual([]);
  });

  it('renders a gRPC bootstrap with the node meshward resolves, and refuses names that are not Kubernetes names', () => {
    const b = renderGrpcBootstrap({ xdsServer: 'unix:///run/meshward/xds.sock', nodeId: 'web-1.shop', namespace: 'shop', serviceAccount: 'web' });
    expect(b.xds_servers).toEqual([{ server_uri: 'unix:///run/meshward/xds.sock', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }]);
    expect(b.node.metadata).toEqual({ NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web', GENERATOR: 'grpc' });
    expect(() => renderGrpcBootstrap({ xdsServer: 'unix:///x', nodeId: 'n', namespace: 'Shop!', serviceAccount: 'web' })).toThrow(/namespace "Shop!"/);
  });

  it('serves mTLS clusters (certificate provider `default`, the destination SPIFFE ID) only to a node that declares the provider', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES });
    const cluster = 'outbound|8080||orders.shop.svc.cluster.local';
    const withFiles = h.client('sotw', 'token:shop:web');
    withFiles.send({ node: node('web-1', { NAMESPACE: 'shop', GENERATOR: 'grpc', MESHWARD_MTLS: 'true' }), type_url: TYPE.cds, resource_names: [cluster] });
    const [tls] = (await withFiles.next()).resources as Json[];
    expect(tls!.transport_socket).toMatchObject({
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        common_tls_context: {
          tls_certificate_provider_instance: { instance_name: 'default' },
          combined_validation_context: { default_validation_context: { ca_certificate_provider_instance: { instance_name: 'default' }, match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/shop/sa/orders' }] } },
        },
      },
    });
    const plain = h.client('sotw', 'token:shop:web');
    plain.send({ node: grpcNode('shop'), type_url: TYPE.cds, resource_names: [cluster] });
    expect(((await plain.next()).resources as Json[])[0]!.transport_socket).toBeUndefined();
  });

  it('declares the SVID files of the agent as the `default` certificate provider when a certificate directory is given', () => {
    const b = renderGrpcBootstrap({ xdsServer: 'unix:///run/meshward/xds.sock', nodeId: 'web-1.shop', namespace: 'shop', serviceAccount: 'web', certificateDir: '/var/run/meshward/svid' });
    expect(b.node.metadata.MESHWARD_MTLS).toBe('true');
    expect(b.certificate_providers).toEqual({ default: { plugin_name: 'file_watcher', config: { certificate_file: '/var/run/meshward/svid/svid.pem', private_key_file: '/var/run/meshward/svid/svid_key.pem', ca_certificate_file: '/var/run/meshward/svid/bundle.pem', refresh_interval: '60s' } } });
    expect(renderGrpcBootstrap({ xdsServer: 'unix:///x', nodeId: 'n', namespace: 'shop', serviceAccount: 'web' }).certificate_providers).toBeUndefined();
  });

  it('meshward proxy grpc-bootstrap prints the gRPC bootstrap as JSON; a missing --xds-server is a usage error', async () => {
    const run = async (argv: string[]) => {
      const out = { stdout: '', stderr: '' };
      const io: CliIo = { stdout: (t) => { out.stdout += t; }, stderr: (t) => { out.stderr += t; }, env: {}, cwd: process.cwd() };
      return { code: await runCli(argv, io), ...out };
    };
    const ok = await run(['proxy', 'grpc-bootstrap', '--node', 'web-1.shop', '--namespace', 'shop', '--service-account', 'web', '--xds-server', 'unix:///run/meshward/xds.sock', '--certificate-dir', '/var/run/meshward/svid']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual(renderGrpcBootstrap({ xdsServer: 'unix:///run/meshward/xds.sock', nodeId: 'web-1.shop', namespace: 'shop', serviceAccount: 'web', certificateDir: '/var/run/meshward/svid' }));
    const missing = await run(['proxy', 'grpc-bootstrap', '--node', 'web-1.shop', '--service-account', 'web']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--xds-server');
  });

  it('generates only resources that @grpc/grpc-js-xds itself validates, for the sample policies and the test mesh, plain and mTLS', () => {
    grpcXds.register(); // registers the HTTP filters (fault, router) the validators look up
    const context = { server: {}, bootstrap: { certificateProviders: { default: {} } } };
    const validators = { listener: ListenerResourceType, route: RouteConfigurationResourceType, cluster: ClusterResourceType, endpoint: EndpointResourceType } as const;
    const configs = [snapshotOf({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) }), createSnapshot(loadConfigDir(path.resolve('policies')))];
    let checked = 0;
    for (const config of configs) {
      const model = compileModel(config);
      for (const mtls of [false, true]) {
        const snapshot = buildSnapshot(config.version, { ...proxylessListenersAndRoutes(model, 'shop'), ...proxylessClusters(model, { mtls }) });
        for (const kind of ['listener', 'route', 'cluster', 'endpoint'] as const) {
          for (const r of snapshot.resources[kind].values()) {
            const result = (validators[kind] as unknown as { get(): { decode(c: unknown, a: unknown): { error?: string } } }).get().decode(context, r.any);
            expect(result.error, `${kind} ${r.name}`).toBeUndefined();
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
