import { describe, expect, it } from 'vitest';
import { generateResources, compileModel, type GeneratedResources } from '../../src/xds/generate/index.ts';
import { buildSnapshot } from '../../src/xds/resources.ts';
import { GENERATED_KINDS as PUSH_ORDER, messageNameOf, type GeneratedKind as ResourceKind } from '../../src/xds/type-urls.ts';
import { envoyMessageType } from '../../src/lib/protos.ts';
import { MESH_ALLOW, ordersRouting, SHOP_SERVICES, snapshotOf } from './fixtures.ts';
import { pgvRuleCount, pgvViolations } from './pgv.ts';

type Json = Record<string, unknown>;

/** Every field we generated survives encode → decode with the same value (a misspelt field would be dropped). */
function missingAfterRoundTrip(input: unknown, output: unknown, at = ''): string[] {
  if (Array.isArray(input)) {
    if (!Array.isArray(output) || output.length !== input.length) return [`${at}: array length ${JSON.stringify(output)?.slice(0, 80)}`];
    return input.flatMap((v, i) => missingAfterRoundTrip(v, output[i], `${at}[${i}]`));
  }
  if (input && typeof input === 'object') {
    if (!output || typeof output !== 'object') return [`${at}: missing`];
    return Object.entries(input).flatMap(([k, v]) => missingAfterRoundTrip(v, (output as Json)[k], `${at}.${k}`));
  }
  return input === output ? [] : [`${at}: ${JSON.stringify(input)} became ${JSON.stringify(output)}`];
}

const REQUIRED: Record<ResourceKind, (r: Json) => boolean> = {
  listener: (r) => typeof r.name === 'string' && Boolean((r.address as Json)?.socket_address) && (r.filter_chains as Json[]).length > 0
    && (r.filter_chains as Json[]).every((fc) => (fc.filters as Json[]).length > 0),
  route: (r) => typeof r.name === 'string' && (r.virtual_hosts as Json[]).every((vh) => (vh.domains as string[]).length > 0 && (vh.routes as Json[]).length > 0),
  cluster: (r) => typeof r.name === 'string' && typeof r.type === 'string' && r.connect_timeout !== undefined,
  endpoint: (r) => typeof r.cluster_name === 'string',
};

const snapshot = snapshotOf({ 'services.yaml': SHOP_SERVICES, 'routing.yaml': ordersRouting(10), 'mesh.yaml': MESH_ALLOW });
const model = compileModel(snapshot);
const ordersProxy = { namespace: 'shop', serviceAccount: 'orders', service: 'orders' };
const generated = generateResources(model, ordersProxy);
const byName = (kind: ResourceKind, name: string): Json => {
  const found = generated[kind].find((r) => (kind === 'endpoint' ? r.cluster_name : r.name) === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found as Json;
};

describe('xDS resource generation', () => {
  const proxies = [ordersProxy, { namespace: 'shop', serviceAccount: 'payments', service: 'payments' }, { namespace: 'data', serviceAccount: 'db', service: 'db' }, { namespace: 'shop', serviceAccount: 'batch' }];
  for (const proxy of proxies) {
    it(`round-trips every resource of ${proxy.namespace}/${proxy.serviceAccount} through the official protos with required fields`, () => {
      const all: GeneratedResources = generateResources(model, proxy);
      for (const kind of PUSH_ORDER) {
        expect(all[kind].length, kind).toBeGreaterThan(0);
        const type = envoyMessageType(messageNameOf(kind));
        for (const resource of all[kind]) {
          const decoded = type.deserialize(Buffer.from(type.serialize(resource)));
          expect(missingAfterRoundTrip(resource, decoded), `${kind} ${String(resource.name ?? resource.cluster_name)}`).toEqual([]);
          expect(REQUIRED[kind](decoded as Json), `${kind} required fields`).toBe(true);
          expect(pgvViolations(decoded as Json, messageNameOf(kind)), `${kind} protoc-gen-validate rules`).toEqual([]);
        }
      }
      expect(() => buildSnapshot(snapshot.version, all)).not.toThrow();
    });
  }

  it('checks the protoc-gen-validate rules Envoy enforces (and the checker catches violations)', () => {
    expect(pgvRuleCount()).toBeGreaterThan(100);
    const cluster = generated.cluster.find((c) => c.name === 'outbound|8080|v2|orders.shop.svc.cluster.local')!;
    expect(pgvViolations({ ...cluster, connect_timeout: {} }, 'envoy.config.cluster.v3.Cluster')).toEqual([
      '.connect_timeout (envoy.config.cluster.v3.Cluster): duration must be > 0',
    ]);
    const route = generated.route[0]!;
    const vh = (route.virtual_hosts as Json[])[0]!;
    const broken = { ...route, virtual_hosts: [{ ...vh, domains: [], routes: [{ match: { prefix: '/' } }] }] };
    expect(pgvViolations(broken, 'envoy.config.route.v3.RouteConfiguration')).toEqual([
      '.virtual_hosts[0].domains (envoy.config.route.v3.VirtualHost): min_items 1',
      '.virtual_hosts[0].routes[0] (envoy.config.route.v3.Route): one of route, redirect, direct_response, filter_action, non_forwarding_action is required',
    ]);
    const inbound = generated.listener.find((l) => l.name === 'virtualInbound')!;
    const noStat = JSON.parse(JSON.stringify(inbound).replace('"stat_prefix":"inbound_8080"', '"stat_prefix":""'));
    expect(pgvViolations(noStat, 'envoy.config.listener.v3.Listener').join('\n')).toContain('stat_prefix (envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager): min_len 1');
  });

  it('requires mutual TLS on the inbound listener with the SDS secrets default and ROOTCA served over ADS', () => {
    const inbound = byName('listener', 'virtualInbound');
    const chain = (inbound.filter_chains as Json[])[0]!;
    expect(chain.filter_chain_match).toEqual({ destination_port: { value: 8081 } });
    const tls = (chain.transport_socket as Json).typed_config as Json;
    expect(tls.require_client_certificate).toEqual({ value: true });
    const common = tls.common_tls_context as Json;
    const certs = common.tls_certificate_sds_secret_configs as Json[];
    expect(certs.map((c) => c.name)).toEqual(['default']);
    const validation = common.combined_validation_context as Json;
    expect((validation.validation_context_sds_secret_config as Json).name).toBe('ROOTCA');
    // SDS over the (authenticated) ADS stream
    expect(certs[0]!.sds_config).toEqual({ ads: {}, resource_api_version: 'V3' });
  });

  it('puts ext_authz before the router inbound, pointing at meshward with the mesh failure mode', () => {
    const hcm = ((byName('listener', 'virtualInbound').filter_chains as Json[])[0]!.filters as Json[])[0]!.typed_config as Json;
    const filters = hcm.http_filters as Json[];
    expect(filters.map((f) => f.name)).toEqual(['envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
    const authz = filters[0]!.typed_config as Json;
    expect(authz.grpc_service).toEqual({ envoy_grpc: { cluster_name: 'meshward' }, timeout: { nanos: 250_000_000 } });
    expect(authz.failure_mode_allow).toBe(true);
    expect(authz.status_on_error).toEqual({ code: 'ServiceUnavailable' });
  });

  it('fails closed by default: no failure_mode_allow without Mesh.extAuthz.failureMode allow', () => {
    const closed = generateResources(compileModel(snapshotOf({ 'services.yaml': SHOP_SERVICES })), ordersProxy);
    const inbound = closed.listener.find((l) => l.name === 'virtualInbound')!;
    expect(JSON.stringify(inbound)).not.toContain('failure_mode_allow');
    expect(JSON.stringify(inbound)).toContain('"code":"Forbidden"');
  });

  it('passes the rule contextExtensions to ext_authz on the inbound routes that match the rule', () => {
    const hcm = ((byName('listener', 'virtualInbound').filter_chains as Json[])[0]!.filters as Json[])[0]!.typed_config as Json;
    const routes = (((hcm.route_config as Json).virtual_hosts as Json[])[0]!.routes as Json[]);
    const ext = (r: Json) => ((r.typed_per_filter_config as Json)['envoy.filters.http.ext_authz'] as Json);
    const canary = routes.filter((r) => r.name === 'canary');
    expect(canary).toHaveLength(2);
    expect(ext(canary[0]!)).toMatchObject({ check_settings: { context_extensions: { route: 'orders-api', service: 'orders', namespace: 'shop' } } });
    const beta = routes.find((r) => r.name === 'beta')!;
    expect((ext(beta).check_settings as Json).context_extensions).toEqual({ service: 'orders', namespace: 'shop' });
    expect(routes.at(-1)).toMatchObject({ name: 'default', match: { prefix: '/' }, route: { cluster: 'inbound|8080||' } });
  });

  it('routes the canary by weight with retries, timeout and fault injection', () => {
    const vh = (byName('route', '8080').virtual_hosts as Json[]).find((v) => v.name === 'orders.shop.svc.cluster.local:8080')!;
    const canary = (vh.routes as Json[]).filter((r) => r.name === 'canary');
    expect(canary[0]!.match).toEqual({ prefix: '/api/orders', headers: [{ name: ':method', string_match: { exact: 'POST' } }] });
    expect(canary[1]!.match).toEqual({ safe_regex: { regex: '^/v[0-9]+/orders$' } });
    expect(canary[0]!.route).toEqual({
      weighted_clusters: { clusters: [
        { name: 'outbound|8080|v1|orders.shop.svc.cluster.local', weight: { value: 90 } },
        { name: 'outbound|8080|v2|orders.shop.svc.cluster.local', weight: { value: 10 } },
      ] },
      timeout: { seconds: '5' },
      retry_policy: { retry_on: '5xx,reset', num_retries: { value: 3 }, per_try_timeout: { seconds: '1', nanos: 500_000_000 } },
    });
    expect((canary[0]!.typed_per_filter_config as Json)['envoy.filters.http.fault']).toMatchObject({
      delay: { fixed_delay: { nanos: 100_000_000 }, percentage: { numerator: 5000, denominator: 'MILLION' } },
      abort: { http_status: 503, percentage: { numerator: 10_000, denominator: 'MILLION' } },
    });
    const beta = (vh.routes as Json[]).find((r) => r.name === 'beta')!;
    expect(beta.match).toEqual({ prefix: '/', headers: [{ name: 'x-beta', string_match: { exact: 'true' } }] });
    expect((beta.route as Json).cluster).toBe('outbound|8080|v2|orders.shop.svc.cluster.local');
  });

  it('offers the short host name only to callers in the same namespace and refuses unknown hosts', () => {
    const fromData = generateResources(model, { namespace: 'data', serviceAccount: 'db', service: 'db' });
    const domains = (r: Json[]) => ((r.find((x) => x.name === '8080')!.virtual_hosts as Json[]).find((v) => String(v.name).startsWith('orders'))!.domains as string[]);
    expect(domains(generated.route)).toContain('orders');
    expect(domains(fromData.route)).not.toContain('orders');
    expect(domains(fromData.route)).toContain('orders.shop');
    const last = (byName('route', '8080').virtual_hosts as Json[]).at(-1)!;
    expect(last).toMatchObject({ domains: ['*'], routes: [{ direct_response: { status: 502 } }] });
  });

  it('applies the TrafficPolicy to clusters: subsets, outlier detection, connection limits, load balancer, upstream mTLS to the SPIFFE ID', () => {
    const v2 = byName('cluster', 'outbound|8080|v2|orders.shop.svc.cluster.local');
    expect(v2).toMatchObject({
      type: 'EDS', lb_policy: 'LEAST_REQUEST', connect_timeout: { seconds: '2' },
      outlier_detection: { consecutive_5xx: { value: 3 }, interval: { seconds: '5' }, base_ejection_time: { seconds: '30' }, max_ejection_percent: { value: 50 } },
      circuit_breakers: { thresholds: [{ max_connections: { value: 100 }, max_requests: { value: 1000 }, max_retries: { value: 3 } }] },
    });
    const tls = (v2.transport_socket as Json).typed_config as Json;
    expect(JSON.stringify(tls)).toContain('"exact":"spiffe://example.org/ns/shop/sa/orders"');
    const web = byName('cluster', 'outbound|8080||web.shop.svc.cluster.local');
    expect(web.outlier_detection).toBeUndefined();
    expect(JSON.stringify(web.transport_socket)).toContain('spiffe://example.org/ns/shop/sa/web');
  });

  it('fills subset endpoints by label and sends to targetPort', () => {
    const v2 = byName('endpoint', 'outbound|8080|v2|orders.shop.svc.cluster.local');
    expect(JSON.stringify(v2)).toContain('10.0.2.20');
    expect(JSON.stringify(v2)).not.toContain('10.0.2.10');
    expect(JSON.stringify(v2)).toContain('"port_value":8081');
    expect(JSON.stringify(byName('endpoint', 'outbound|8080||orders.shop.svc.cluster.local'))).toContain('10.0.2.10');
  });

  it('gives no inbound listener to a sidecar whose claimed service runs as another service account', () => {
    const impostor = generateResources(model, { namespace: 'shop', serviceAccount: 'web', service: 'orders' });
    expect(impostor.listener.map((l) => l.name)).not.toContain('virtualInbound');
    expect(impostor.cluster.map((c) => c.name)).not.toContain('inbound|8080||');
  });

  it('routes TCP services by destination address with tcp_proxy', () => {
    const pg = byName('listener', '0.0.0.0_5432');
    expect(JSON.stringify(pg)).toContain('"address_prefix":"10.0.9.1"');
    expect(JSON.stringify(pg)).toContain('"cluster":"outbound|5432||db.data.svc.cluster.local"');
  });

  it('versions resources by content: the same inputs give the same versions, a weight change changes only the route', () => {
    const a = buildSnapshot('a', generated);
    const b = buildSnapshot('b', generateResources(compileModel(snapshotOf({ 'services.yaml': SHOP_SERVICES, 'routing.yaml': ordersRouting(10), 'mesh.yaml': MESH_ALLOW })), ordersProxy));
    const c = buildSnapshot('c', generateResources(compileModel(snapshotOf({ 'services.yaml': SHOP_SERVICES, 'routing.yaml': ordersRouting(50), 'mesh.yaml': MESH_ALLOW })), ordersProxy));
    const versions = (s: typeof a) => Object.fromEntries(PUSH_ORDER.map((k) => [k, [...s.resources[k].values()].map((r) => `${r.name}@${r.version}`)]));
    expect(versions(b)).toEqual(versions(a));
    const changed = (k: ResourceKind) => [...c.resources[k].values()].filter((r) => a.resources[k].get(r.name)?.version !== r.version).map((r) => r.name);
    expect(changed('route')).toEqual(['8080']);
    expect(changed('cluster')).toEqual([]);
    expect(changed('endpoint')).toEqual([]);
    // the inbound listener embeds the rule matches for context_extensions, weights are not part of it
    expect(changed('listener')).toEqual([]);
  });

  it('refuses to publish a snapshot whose listener names a route that was not generated', () => {
    const broken = { ...generated, route: [] };
    expect(() => buildSnapshot('x', broken)).toThrow(expect.objectContaining({ code: 'XDS_INCONSISTENT_SNAPSHOT' }));
  });
});

describe('generation cache', () => {
  it('reuses the previous version\'s encoding of unchanged resources and re-encodes the changed route', async () => {
    const { GenerationCache } = await import('../../src/xds/cache.ts');
    const v1 = new GenerationCache(snapshotOf({ 'services.yaml': SHOP_SERVICES, 'routing.yaml': ordersRouting(10) }));
    const v2 = new GenerationCache(snapshotOf({ 'services.yaml': SHOP_SERVICES, 'routing.yaml': ordersRouting(30) }), v1);
    const a = v1.snapshotFor(ordersProxy);
    const b = v2.snapshotFor(ordersProxy);
    const cluster = 'outbound|8080|v1|orders.shop.svc.cluster.local';
    expect(b.resources.cluster.get(cluster)).toBe(a.resources.cluster.get(cluster));
    expect(b.resources.route.get('8080')).not.toBe(a.resources.route.get('8080'));
    expect(b.resources.route.get('8080')!.version).not.toBe(a.resources.route.get('8080')!.version);
    // every sidecar of the mesh shares the outbound clusters
    const web = v2.snapshotFor({ namespace: 'shop', serviceAccount: 'web', service: 'web' });
    expect(web.resources.cluster.get(cluster)).toBe(b.resources.cluster.get(cluster));
  });
});

describe('SDS secrets over ADS', () => {
  it('encodes the workload certificate and the bundle as valid Envoy Secrets named default and ROOTCA', async () => {
    const { encodeSecrets } = await import('../../src/xds/secrets.ts');
    const secrets = encodeSecrets(
      { svid: { serial: 'a1', chainPem: '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n' }, privateKeyPem: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n' },
      { sequence: 3, rootsPem: '-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n' },
    );
    expect([...secrets.keys()]).toEqual(['default', 'ROOTCA']);
    const type = envoyMessageType('envoy.extensions.transport_sockets.tls.v3.Secret');
    for (const [name, r] of secrets) {
      const decoded = type.deserialize(r.any.value) as Json;
      expect(decoded.name).toBe(name);
      expect(pgvViolations(decoded, 'envoy.extensions.transport_sockets.tls.v3.Secret')).toEqual([]);
    }
    expect(secrets.get('default')!.version).toBe('a1');
    expect(secrets.get('ROOTCA')!.version).toMatch(/^bundle-3-[0-9a-f]{12}$/);
  });
});
