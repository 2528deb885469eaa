/**
 * Proxyless gRPC (gRPC's xDS client, A27/A28 of the gRPC proposals): no sidecar, so no capture
 * listeners, no TLS-from-SDS and no ext_authz. The channel `xds:///orders.shop.svc.cluster.local:8080`
 * asks LDS for an *API listener* named `host:port`, whose HttpConnectionManager names a
 * RouteConfiguration (RDS); its routes name EDS clusters (CDS), whose endpoints come from EDS.
 * gRPC's client validates strictly: config sources must be `ads`, the router filter must be last,
 * lb_policy ROUND_ROBIN or RING_HASH, every endpoint group needs a locality with a weight, and an
 * UpstreamTlsContext must use certificate provider instances declared in the client's bootstrap
 * (SDS secret names are refused). So clusters are plain text unless the node says its bootstrap
 * has the `default` provider (the agent's SVID files); then they require the destination's
 * SPIFFE ID over mTLS (see docs/xds.md, "Proxyless gRPC").
 */
import type { ServiceSpec, TrafficPolicySpec } from '../../config/index.ts';
import { ADS_CONFIG_SOURCE, duration, durationMs, FILTER, TYPE, type Json } from './common.ts';
import { subsetLbEndpoints } from './endpoints.ts';
import type { MeshModel, MeshService } from './model.ts';
import { outboundClusterName } from './names.ts';
import { DEFAULT_RETRY_POLICY, outboundRoutes, serviceDomains } from './routes.ts';

type ServicePort = ServiceSpec['ports'][number];

/** Node metadata Istio's proxyless bootstrap sets (`GENERATOR: grpc`); gRPC libraries' user agents start with "gRPC". */
export const PROXYLESS_GENERATOR = 'grpc';

/** Ports a gRPC channel can reach (HTTP/2 based): every non-TCP port. */
const httpPorts = (svc: MeshService): ServicePort[] => svc.spec.ports.filter((p) => p.protocol !== 'TCP');

/** The RouteConfiguration (RDS) name of a service port for gRPC clients: `fqdn:port`. */
export function proxylessRouteName(svc: MeshService, port: number): string {
  return `${svc.fqdn}:${port}`;
}

/** One API listener per `host:port` a client may dial (the xDS target's authority), all sharing the port's routes. */
function apiListeners(svc: MeshService, port: number, callerNs: string): Json[] {
  const names = serviceDomains(svc, port, callerNs).filter((d) => d.endsWith(`:${port}`));
  return names.map((name) => ({
    name,
    api_listener: {
      api_listener: {
        '@type': TYPE.hcm,
        rds: { config_source: ADS_CONFIG_SOURCE, route_config_name: proxylessRouteName(svc, port) },
        // gRPC requires the router last; fault injection is supported by gRPC's xDS clients.
        http_filters: [{ name: FILTER.fault, typed_config: { '@type': TYPE.fault } }, { name: FILTER.router, typed_config: { '@type': TYPE.router } }],
      },
    },
  }));
}

function routeConfiguration(svc: MeshService, port: number, model: MeshModel, callerNs: string): Json {
  const rules = svc.httpRules;
  const routes = rules
    ? rules.flatMap((r, i) => outboundRoutes(r, i, model, svc.routeNamespace ?? svc.namespace, port))
    : [{ name: 'default', match: { prefix: '/' }, route: { cluster: outboundClusterName(port, undefined, svc.fqdn), timeout: durationMs(0), retry_policy: DEFAULT_RETRY_POLICY } }];
  const name = proxylessRouteName(svc, port);
  return { name, virtual_hosts: [{ name, domains: serviceDomains(svc, port, callerNs), routes }] };
}

/** The certificate provider instance (gRPC bootstrap `certificate_providers`) holding the SVID and the bundle. */
export const GRPC_CERTIFICATE_PROVIDER = 'default';

/** mTLS with the client's own SVID, accepting only a server certificate with the destination's SPIFFE ID. */
function upstreamMtlsFromProvider(peerSpiffeId: string): Json {
  const provider = { instance_name: GRPC_CERTIFICATE_PROVIDER };
  return {
    name: FILTER.tls,
    typed_config: {
      '@type': TYPE.upstreamTls,
      common_tls_context: {
        tls_certificate_provider_instance: provider,
        // gRPC reads match_subject_alt_names (not the typed variant); an exact value matches a URI SAN.
        combined_validation_context: { default_validation_context: { ca_certificate_provider_instance: provider, match_subject_alt_names: [{ exact: peerSpiffeId }] } },
      },
    },
  };
}

/** gRPC balances ROUND_ROBIN (and RING_HASH); LEAST_REQUEST and RANDOM are served as ROUND_ROBIN. */
function proxylessCluster(svc: MeshService, port: ServicePort, subset: string | undefined, mtls: boolean): Json {
  const tp: TrafficPolicySpec | undefined = svc.trafficPolicy;
  const name = outboundClusterName(port.port, subset, svc.fqdn);
  const od = tp?.outlierDetection;
  const maxRequests = tp?.connectionPool?.http?.http2MaxRequests;
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_CONFIG_SOURCE, service_name: name },
    lb_policy: 'ROUND_ROBIN',
    ...(maxRequests ? { circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_requests: { value: maxRequests } }] } } : {}),
    ...(od
      ? {
        outlier_detection: {
          consecutive_5xx: { value: od.consecutive5xxErrors },
          interval: duration(od.interval),
          base_ejection_time: duration(od.baseEjectionTime),
          max_ejection_percent: { value: od.maxEjectionPercent },
        },
      }
      : {}),
    ...(mtls ? { transport_socket: upstreamMtlsFromProvider(svc.spiffeId) } : {}),
  };
}

/** A ClusterLoadAssignment gRPC accepts: one weighted locality (gRPC drops localities without weight). */
function proxylessLoadAssignment(svc: MeshService, port: ServicePort, subset: { name?: string; labels: Record<string, string> }): Json {
  const lbEndpoints = subsetLbEndpoints(svc, port, subset.labels);
  const name = outboundClusterName(port.port, subset.name, svc.fqdn);
  return { cluster_name: name, ...(lbEndpoints.length ? { endpoints: [{ locality: {}, load_balancing_weight: { value: 1 }, lb_endpoints: lbEndpoints }] } : {}) };
}

/** Proxy-independent: the EDS clusters (plain text or mTLS) and their endpoints, per port and subset. */
export function proxylessClusters(model: MeshModel, options: { mtls: boolean }): { cluster: Json[]; endpoint: Json[] } {
  const cluster: Json[] = [];
  const endpoint: Json[] = [];
  for (const svc of model.services.values()) {
    const subsets = [{ labels: {} as Record<string, string> }, ...(svc.trafficPolicy?.subsets ?? [])];
    for (const port of svc.spec.ports) {
      for (const s of subsets) {
        const subsetName = 'name' in s ? s.name : undefined;
        cluster.push(proxylessCluster(svc, port, subsetName, options.mtls));
        endpoint.push(proxylessLoadAssignment(svc, port, { ...(subsetName ? { name: subsetName } : {}), labels: s.labels }));
      }
    }
  }
  return { cluster, endpoint };
}

/** Seen from a namespace (short names resolve within it): API listeners and their route configurations. */
export function proxylessListenersAndRoutes(model: MeshModel, callerNs: string): { listener: Json[]; route: Json[] } {
  const listener: Json[] = [];
  const route: Json[] = [];
  const taken = new Set<string>();
  for (const svc of model.services.values()) {
    for (const port of httpPorts(svc)) {
      // `Service.spec.hosts` may repeat another service's name: the first service keeps it.
      for (const l of apiListeners(svc, port.port, callerNs)) {
        if (taken.has(l.name as string)) continue;
        taken.add(l.name as string);
        listener.push(l);
      }
      route.push(routeConfiguration(svc, port.port, model, callerNs));
    }
  }
  return { listener, route };
}
