/**
 * Clusters: one per service port and per TrafficPolicy subset, endpoints over EDS, upstream mTLS
 * checking the destination's SPIFFE ID, and the TrafficPolicy's circuit breaking (outlier
 * detection, connection limits) and load balancing. Plus the local inbound clusters.
 */
import type { ServiceSpec, TrafficPolicySpec } from '../../config/index.ts';
import { ADS_CONFIG_SOURCE, duration, durationMs, FILTER, socketAddress, TYPE, upstreamMtls, type Json } from './common.ts';
import type { MeshService } from './model.ts';
import { BLACKHOLE_CLUSTER, inboundClusterName, outboundClusterName } from './names.ts';

type ServicePort = ServiceSpec['ports'][number];

/** Istio's defaults: connection pools effectively unlimited, 10 s connect timeout. */
const UNLIMITED = 4_294_967_295;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const isHttp2 = (p: ServicePort) => p.protocol === 'HTTP2' || p.protocol === 'GRPC';

function circuitBreakers(tp: TrafficPolicySpec | undefined): Json {
  const pool = tp?.connectionPool;
  return {
    thresholds: [{
      priority: 'DEFAULT',
      max_connections: { value: pool?.tcp?.maxConnections ?? UNLIMITED },
      max_pending_requests: { value: pool?.http?.http1MaxPendingRequests ?? UNLIMITED },
      max_requests: { value: pool?.http?.http2MaxRequests ?? UNLIMITED },
      max_retries: { value: pool?.http?.maxRetries ?? UNLIMITED },
    }],
  };
}

/** Istio's outlierDetection → Envoy's: consecutive 5xx ejects a host for baseEjectionTime × ejections. */
function outlierDetection(tp: TrafficPolicySpec | undefined): Json | undefined {
  const od = tp?.outlierDetection;
  if (!od) return undefined;
  return {
    consecutive_5xx: { value: od.consecutive5xxErrors },
    interval: duration(od.interval),
    base_ejection_time: duration(od.baseEjectionTime),
    max_ejection_percent: { value: od.maxEjectionPercent },
    // Gateway errors are 5xx too; keep them counted once, as Istio does.
    enforcing_consecutive_gateway_failure: { value: 0 },
  };
}

function protocolOptions(port: ServicePort, tp: TrafficPolicySpec | undefined): Json | undefined {
  const maxPerConn = tp?.connectionPool?.http?.maxRequestsPerConnection;
  const common = maxPerConn ? { common_http_protocol_options: { max_requests_per_connection: { value: maxPerConn } } } : {};
  if (port.protocol === 'TCP') return undefined;
  const explicit = isHttp2(port)
    ? { explicit_http_config: { http2_protocol_options: {} } }
    : { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } };
  return { [FILTER.httpProtocolOptions]: { '@type': TYPE.httpProtocolOptions, ...common, ...explicit } };
}

function lbPolicy(tp: TrafficPolicySpec | undefined): string {
  return tp?.loadBalancer ?? 'ROUND_ROBIN';
}

/** An outbound cluster (`outbound|port|subset|fqdn`), endpoints over ADS-delivered EDS. */
export function outboundCluster(svc: MeshService, port: ServicePort, subset: string | undefined, sdsSource: Json = ADS_CONFIG_SOURCE): Json {
  const tp = svc.trafficPolicy;
  const name = outboundClusterName(port.port, subset, svc.fqdn);
  const od = outlierDetection(tp);
  const opts = protocolOptions(port, tp);
  const connectTimeout = tp?.connectionPool?.tcp?.connectTimeout;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_CONFIG_SOURCE, service_name: name },
    connect_timeout: connectTimeout ? duration(connectTimeout) : durationMs(DEFAULT_CONNECT_TIMEOUT_MS),
    lb_policy: lbPolicy(tp),
    circuit_breakers: circuitBreakers(tp),
    ...(od ? { outlier_detection: od } : {}),
    transport_socket: upstreamMtls(svc.fqdn, svc.spiffeId, isHttp2(port) ? ['h2'] : [], sdsSource),
    ...(opts ? { typed_extension_protocol_options: opts } : {}),
  };
}

/** Every outbound cluster of a service: each port, unsubsetted and per subset. */
export function serviceClusters(svc: MeshService, sdsSource: Json = ADS_CONFIG_SOURCE): Json[] {
  const subsets = [undefined, ...(svc.trafficPolicy?.subsets ?? []).map((s) => s.name)];
  return svc.spec.ports.flatMap((p) => subsets.map((s) => outboundCluster(svc, p, s, sdsSource)));
}

/** The local application behind the inbound listener: 127.0.0.1:targetPort, plain text inside the pod. */
export function inboundCluster(port: ServicePort): Json {
  const name = inboundClusterName(port.port);
  const target = port.targetPort ?? port.port;
  return {
    name,
    type: 'STATIC',
    connect_timeout: durationMs(DEFAULT_CONNECT_TIMEOUT_MS),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', target) } }] }] },
    ...(isHttp2(port) ? { typed_extension_protocol_options: { [FILTER.httpProtocolOptions]: { '@type': TYPE.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } } } } : {}),
  };
}

/** Destination of connections to unknown hosts: no endpoints, so they fail (REGISTRY_ONLY). */
export const BLACKHOLE: Json = { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: durationMs(DEFAULT_CONNECT_TIMEOUT_MS) };
