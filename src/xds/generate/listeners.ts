/**
 * Listeners. Inbound (`virtualInbound`, :15006): mutual TLS required, then meshward's ext_authz
 * with per-route context_extensions, then the router to the local application. Outbound
 * (`virtualOutbound`, :15001, plus one listener per service port handed off by original
 * destination): HTTP via RDS with fault injection, TCP via tcp_proxy; unknown destinations refused.
 * The port layout is Istio's, so the same iptables capture (istio-init / istio-cni) works.
 */
import type { HttpRoute, ResolvedMeshSpec, ServiceSpec } from '../../config/index.ts';
import { parseDuration } from '../../config/index.ts';
import { ADS_CONFIG_SOURCE, downstreamMtls, sdsConfigSource, durationMs, FILTER, httpStatusCodeName, MESHWARD_CLUSTER, socketAddress, TYPE, type Json } from './common.ts';
import type { MeshService } from './model.ts';
import { BLACKHOLE_CLUSTER, INBOUND_CAPTURE_PORT, inboundClusterName, OUTBOUND_CAPTURE_PORT, outboundClusterName, outboundListenerName, outboundRouteName, VIRTUAL_INBOUND, VIRTUAL_OUTBOUND } from './names.ts';
import { routeMatch } from './routes.ts';

type ServicePort = ServiceSpec['ports'][number];

const ROUTER: Json = { name: FILTER.router, typed_config: { '@type': TYPE.router } };

/**
 * The ext_authz HTTP filter calling meshward (through `cluster`: the gRPC port's, or the unary
 * port's when the sidecar's bootstrap has it); Mesh.extAuthz decides failure mode, body and timeout.
 */
export function extAuthzFilter(settings: ResolvedMeshSpec['extAuthz'], cluster: string = MESHWARD_CLUSTER): Json {
  return {
    name: FILTER.extAuthz,
    typed_config: {
      '@type': TYPE.extAuthz,
      transport_api_version: 'V3',
      grpc_service: { envoy_grpc: { cluster_name: cluster }, timeout: durationMs(parseDuration(settings.timeout)) },
      ...(settings.failureMode === 'allow' ? { failure_mode_allow: true } : {}),
      ...(settings.maxRequestBytes > 0
        ? { with_request_body: { max_request_bytes: settings.maxRequestBytes, ...(settings.allowPartialMessage ? { allow_partial_message: true } : {}) } }
        : {}),
      status_on_error: { code: httpStatusCodeName(settings.statusOnError) },
      include_peer_certificate: true,
    },
  };
}

/**
 * HttpConnectionManager path options for an Istio path normalization (as pilot sets them), so
 * Envoy forwards and routes the same path meshward's ext_authz matches policies against.
 */
export function pathNormalizationOptions(normalization: ResolvedMeshSpec['pathNormalization']['normalization']): Json {
  switch (normalization) {
    case 'NONE': return { normalize_path: { value: false }, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'BASE': return { normalize_path: { value: true }, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'MERGE_SLASHES': return { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'KEEP_UNCHANGED' };
    case 'DECODE_AND_MERGE_SLASHES': return { normalize_path: { value: true }, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' };
  }
}

function tcpProxy(statPrefix: string, cluster: string): Json {
  return { name: FILTER.tcpProxy, typed_config: { '@type': TYPE.tcpProxy, stat_prefix: statPrefix, cluster } };
}

function extAuthzPerRoute(extensions: Record<string, string>): Json {
  return { [FILTER.extAuthz]: { '@type': TYPE.extAuthzPerRoute, check_settings: { context_extensions: extensions } } };
}

/**
 * Inbound routes mirror the service's Route rules (matches only, all to the local app) so the
 * policy engine sees the rule's `contextExtensions`; every route also names the service.
 */
function inboundRoutes(svc: MeshService, cluster: string): Json[] {
  const base = { service: svc.name, namespace: svc.namespace };
  const fromRules = (svc.httpRules ?? []).flatMap((rule: HttpRoute, i) => (rule.match.length ? rule.match : [undefined]).map((m) => ({
    name: rule.name ?? `rule-${i}`,
    match: routeMatch(m),
    route: { cluster, timeout: durationMs(0) },
    typed_per_filter_config: extAuthzPerRoute({ ...base, ...rule.contextExtensions }),
  })));
  return [...fromRules, { name: 'default', match: { prefix: '/' }, route: { cluster, timeout: durationMs(0) }, typed_per_filter_config: extAuthzPerRoute(base) }];
}

function inboundFilterChain(svc: MeshService, port: ServicePort, mesh: ResolvedMeshSpec, authzCluster: string): Json {
  const cluster = inboundClusterName(port.port);
  const target = port.targetPort ?? port.port;
  const filter = port.protocol === 'TCP'
    ? tcpProxy(`inbound_${port.port}`, cluster)
    : {
      name: FILTER.hcm,
      typed_config: {
        '@type': TYPE.hcm,
        stat_prefix: `inbound_${port.port}`,
        codec_type: 'AUTO',
        ...pathNormalizationOptions(mesh.pathNormalization.normalization),
        route_config: { name: cluster, virtual_hosts: [{ name: `inbound|http|${port.port}`, domains: ['*'], routes: inboundRoutes(svc, cluster) }], validate_clusters: { value: false } },
        http_filters: [extAuthzFilter(mesh.extAuthz, authzCluster), ROUTER],
        // The application learns the caller's SPIFFE ID from x-forwarded-client-cert, never from the caller.
        forward_client_cert_details: 'SANITIZE_SET',
        set_current_client_cert_details: { uri: true },
      },
    };
  return { name: `inbound|${target}`, filter_chain_match: { destination_port: { value: target } }, filters: [filter], transport_socket: downstreamMtls(sdsConfigSource(mesh)) };
}

/** The inbound listener of a sidecar fronting `svc`. */
export function inboundListener(svc: MeshService, mesh: ResolvedMeshSpec, authzCluster: string = MESHWARD_CLUSTER): Json {
  return {
    name: VIRTUAL_INBOUND,
    address: socketAddress('0.0.0.0', INBOUND_CAPTURE_PORT),
    traffic_direction: 'INBOUND',
    listener_filters: [{ name: FILTER.originalDst, typed_config: { '@type': TYPE.originalDst } }],
    filter_chains: svc.spec.ports.map((p) => inboundFilterChain(svc, p, mesh, authzCluster)),
  };
}

/** Captures all outbound connections and hands them to the per-port listener of their original destination. */
export function virtualOutboundListener(): Json {
  return {
    name: VIRTUAL_OUTBOUND,
    address: socketAddress('0.0.0.0', OUTBOUND_CAPTURE_PORT),
    traffic_direction: 'OUTBOUND',
    use_original_dst: { value: true },
    filter_chains: [{ name: 'blackhole', filters: [tcpProxy(BLACKHOLE_CLUSTER, BLACKHOLE_CLUSTER)] }],
  };
}

/** One outbound listener for a port: HTTP services via RDS, TCP services by destination address. */
export function outboundListener(port: number, http: readonly MeshService[], tcp: readonly MeshService[], mesh: ResolvedMeshSpec): Json {
  const tcpChains = tcp.filter((s) => s.spec.endpoints.length > 0).map((s) => ({
    name: outboundClusterName(port, undefined, s.fqdn),
    filter_chain_match: { prefix_ranges: s.spec.endpoints.map((e) => ({ address_prefix: e.address, prefix_len: { value: e.address.includes(':') ? 128 : 32 } })) },
    filters: [tcpProxy(`outbound|${port}||${s.fqdn}`, outboundClusterName(port, undefined, s.fqdn))],
  }));
  const httpChain = http.length
    ? [{
      name: `outbound_http_${port}`,
      filters: [{
        name: FILTER.hcm,
        typed_config: {
          '@type': TYPE.hcm,
          stat_prefix: `outbound_0.0.0.0_${port}`,
          codec_type: 'AUTO',
          ...pathNormalizationOptions(mesh.pathNormalization.normalization),
          rds: { config_source: ADS_CONFIG_SOURCE, route_config_name: outboundRouteName(port) },
          http_filters: [{ name: FILTER.fault, typed_config: { '@type': TYPE.fault } }, ROUTER],
        },
      }],
    }]
    : [];
  return {
    name: outboundListenerName(port),
    address: socketAddress('0.0.0.0', port),
    traffic_direction: 'OUTBOUND',
    bind_to_port: { value: false },
    filter_chains: [...tcpChains, ...httpChain],
  };
}
