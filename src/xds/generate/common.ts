/**
 * Building blocks of generated Envoy resources, as plain objects in proto-loader's JSON shape
 * (snake_case fields, `{"@type": ...}` for Any, wrapper types as `{value}`, durations as
 * `{seconds, nanos}` with string seconds). Encoded later by `encode.ts` with the official protos.
 */
import { parseDuration } from '../../config/index.ts';
import { envoyPackageDefinition } from '../../lib/protos.ts';

/** Name of meshward's gRPC cluster, defined statically in the bootstrap (ADS needs it before any xDS). */
export const MESHWARD_CLUSTER = 'meshward';
/** The static cluster of meshward's unary gRPC port (ext_authz), in bootstraps made with `--unary-meshward`. */
export const MESHWARD_UNARY_CLUSTER = 'meshward-unary';
/** SDS secret names served by meshward's SDS: the workload SVID and the trust bundle (Istio's names). */
export const SDS_CERT = 'default';
export const SDS_ROOT = 'ROOTCA';

export type Json = Record<string, unknown>;

export const TYPE = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  extAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  extAuthzPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
} as const;

export const FILTER = {
  hcm: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  extAuthz: 'envoy.filters.http.ext_authz',
  fault: 'envoy.filters.http.fault',
  tls: 'envoy.transport_sockets.tls',
  originalDst: 'envoy.filters.listener.original_dst',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/** A google.protobuf.Duration; zero is `{}` (what decoding gives back, and Envoy reads as 0 = disabled). */
export function durationMs(ms: number): Json {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  return { ...(seconds ? { seconds: String(seconds) } : {}), ...(nanos ? { nanos } : {}) };
}

export function duration(text: string): Json {
  return durationMs(parseDuration(text));
}

/** A percentage 0-100 (fractions allowed) as Envoy's FractionalPercent over a million. */
export function percent(p: number): Json {
  const numerator = Math.round(p * 10_000);
  return { ...(numerator ? { numerator } : {}), denominator: 'MILLION' };
}

export function socketAddress(address: string, port: number): Json {
  return { socket_address: { address, port_value: port } };
}

/** Resources pushed on the ADS stream itself. */
export const ADS_CONFIG_SOURCE: Json = { ads: {}, resource_api_version: 'V3' };

/** The static cluster of the local `meshward agent`'s SDS socket (`meshward proxy bootstrap --agent`). */
export const AGENT_SDS_CLUSTER = 'meshward-agent';

/** SDS from the local agent over its Unix socket: no credential, the socket's permissions decide. */
export const AGENT_SDS_CONFIG_SOURCE: Json = {
  resource_api_version: 'V3',
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: AGENT_SDS_CLUSTER } }] },
};

/** Where certificates come from: meshward over ADS, or the local agent when meshward serves no keys (`identity.serverKeys: false`). */
export function sdsConfigSource(mesh: { identity: { serverKeys?: boolean } }): Json {
  return mesh.identity.serverKeys === false ? AGENT_SDS_CONFIG_SOURCE : ADS_CONFIG_SOURCE;
}

/**
 * Certificates come over the ADS stream itself (SDS over ADS): that stream is already authenticated
 * with the sidecar's token, so no credential has to be embedded in shared resources, and the CA's
 * rotations reach the proxy on the connection it already has. With `identity.serverKeys: false`
 * they come from the agent next to the proxy instead.
 */
export function sdsSecretConfig(name: string, source: Json = ADS_CONFIG_SOURCE): Json {
  return { name, sds_config: source };
}

/** Both sides present the workload SVID (`default`) and trust only the mesh bundle (`ROOTCA`). */
function commonTlsContext(alpn: string[], peerSpiffeIds: string[] | undefined, source: Json): Json {
  return {
    tls_certificate_sds_secret_configs: [sdsSecretConfig(SDS_CERT, source)],
    combined_validation_context: {
      default_validation_context: peerSpiffeIds
        ? { match_typed_subject_alt_names: peerSpiffeIds.map((id) => ({ san_type: 'URI', matcher: { exact: id } })) }
        : {},
      validation_context_sds_secret_config: sdsSecretConfig(SDS_ROOT, source),
    },
    ...(alpn.length ? { alpn_protocols: alpn } : {}),
  };
}

/** Inbound: mutual TLS required; any workload of the trust domain may connect (authorization decides per request). */
export function downstreamMtls(source: Json = ADS_CONFIG_SOURCE): Json {
  return {
    name: FILTER.tls,
    typed_config: { '@type': TYPE.downstreamTls, common_tls_context: commonTlsContext(['h2', 'http/1.1'], undefined, source), require_client_certificate: { value: true } },
  };
}

/** Outbound: mutual TLS to the destination, whose certificate must carry the destination service's SPIFFE ID. */
export function upstreamMtls(sni: string, peerSpiffeId: string, alpn: string[], source: Json = ADS_CONFIG_SOURCE): Json {
  return {
    name: FILTER.tls,
    typed_config: { '@type': TYPE.upstreamTls, common_tls_context: commonTlsContext(alpn, [peerSpiffeId], source), sni },
  };
}

let statusNames: Map<number, string> | undefined;

/** envoy.type.v3.StatusCode enum name of an HTTP status (proto-loader encodes enums by name). */
export function httpStatusCodeName(code: number): string {
  if (!statusNames) {
    const def = envoyPackageDefinition()['envoy.type.v3.StatusCode'] as { type?: { value?: { name: string; number: number }[] } } | undefined;
    statusNames = new Map((def?.type?.value ?? []).map((v) => [v.number, v.name]));
  }
  const name = statusNames.get(code);
  if (!name) throw new Error(`HTTP status ${code} has no envoy.type.v3.StatusCode name`);
  return name;
}
