/**
 * The Envoy bootstrap that points a sidecar at meshward: ADS (SotW or Delta) for listeners,
 * routes, clusters and endpoints; the static `meshward` cluster that ADS, SDS and ext_authz use;
 * the node identity meshward checks against the sidecar's credential. Pure: options in, object out.
 */
import { stringify } from 'yaml';
import { AGENT_SDS_CLUSTER, FILTER, MESHWARD_CLUSTER, MESHWARD_UNARY_CLUSTER, TYPE, type Json } from './generate/common.ts';

export { AGENT_SDS_CLUSTER };

export interface BootstrapOptions {
  /** Envoy node id (e.g. the pod name, or Istio's `sidecar~IP~pod.ns~ns.svc.cluster.local`). */
  nodeId: string;
  namespace: string;
  serviceAccount: string;
  /** The Service whose inbound traffic this sidecar receives; omit for a client-only workload. */
  service?: string;
  /** meshward's gRPC address, host:port. */
  meshwardAddress: string;
  /**
   * meshward's unary gRPC port (`serve --unary-grpc-addr`) as the sidecar reaches it: adds the
   * `meshward-unary` cluster (same TLS as `meshward`) and says so in the node metadata, so the
   * ext_authz filter meshward sends this sidecar calls it there.
   */
  meshwardUnaryAddress?: string;
  /** Incremental (Delta) xDS instead of State of the World. */
  delta?: boolean;
  adminPort?: number;
  /** PEM file of the CA that signed meshward's gRPC server certificate (TLS to meshward); plain text when absent. */
  meshwardCaFile?: string;
  /** What the bearer token header says; Envoy does not expand variables, so substitute it (envsubst) before starting Envoy. */
  tokenPlaceholder?: string;
  /**
   * Unix socket of a `meshward agent` next to Envoy: adds the `meshward-agent` cluster (a `pipe`
   * address, no credential: the socket's permissions are the access control) for SDS from the agent.
   */
  agentSocket?: string;
  /** Unix socket of the agent's xDS proxy: ADS goes there, with no token in the bootstrap (the agent adds the current one). */
  agentXdsSocket?: string;
}

/** The static cluster of the local agent's xDS proxy socket. */
export const AGENT_XDS_CLUSTER = 'meshward-agent-xds';


/** A static HTTP/2 (gRPC) cluster with one endpoint at `address` (an Envoy Address). */
function grpcCluster(name: string, type: 'STATIC' | 'STRICT_DNS', address: Json): Json {
  return {
    name,
    type,
    connect_timeout: { seconds: '1' },
    typed_extension_protocol_options: { [FILTER.httpProtocolOptions]: { '@type': TYPE.httpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } } },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
  };
}

function agentCluster(socketPath: string, name = AGENT_SDS_CLUSTER): Json {
  return grpcCluster(name, 'STATIC', { pipe: { path: socketPath } });
}

export const DEFAULT_ADMIN_PORT = 15099;
// biome-ignore lint/suspicious/noTemplateCurlyInString: an envsubst placeholder, not a template literal
export const DEFAULT_TOKEN_PLACEHOLDER = '${MESHWARD_TOKEN}';

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`meshward address "${address}" must be host:port`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

/** A static HTTP/2 cluster to one of meshward's gRPC addresses, with TLS when a CA file is given. */
function meshwardCluster(name: string, address: string, caFile: string | undefined): Json {
  const { host, port } = hostPort(address);
  const ipLiteral = /^[\d.]+$/.test(host) || host.includes(':');
  return {
    ...grpcCluster(name, ipLiteral ? 'STATIC' : 'STRICT_DNS', { socket_address: { address: host, port_value: port } }),
    ...(caFile ? { transport_socket: meshwardTls(caFile, host, ipLiteral) } : {}),
  };
}

/** The bootstrap as an object in the Envoy Bootstrap proto's JSON shape. */
export function bootstrapObject(o: BootstrapOptions): Json {
  // Struct in Envoy's JSON mapping: a plain object.
  const metadata: Record<string, string> = {
    NAMESPACE: o.namespace, SERVICE_ACCOUNT: o.serviceAccount, ...(o.service ? { SERVICE: o.service } : {}), ...(o.meshwardUnaryAddress ? { MESHWARD_UNARY_AUTHZ: 'true' } : {}),
  };
  return {
    node: { id: o.nodeId, cluster: o.service ? `${o.service}.${o.namespace}` : o.namespace, metadata },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort ?? DEFAULT_ADMIN_PORT } } },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [o.agentXdsSocket
          // Through the agent: it adds the current token to the upstream stream.
          ? { envoy_grpc: { cluster_name: AGENT_XDS_CLUSTER } }
          : {
            envoy_grpc: { cluster_name: MESHWARD_CLUSTER },
            // The sidecar's credential (a Kubernetes service-account token or `meshward ca token`).
            initial_metadata: [{ key: 'authorization', value: `Bearer ${o.tokenPlaceholder ?? DEFAULT_TOKEN_PLACEHOLDER}` }],
          }],
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: {
      clusters: [meshwardCluster(MESHWARD_CLUSTER, o.meshwardAddress, o.meshwardCaFile), ...(o.meshwardUnaryAddress ? [meshwardCluster(MESHWARD_UNARY_CLUSTER, o.meshwardUnaryAddress, o.meshwardCaFile)] : []), ...(o.agentSocket ? [agentCluster(o.agentSocket)] : []), ...(o.agentXdsSocket ? [agentCluster(o.agentXdsSocket, AGENT_XDS_CLUSTER)] : [])],
    },
  };
}

/** The bootstrap as YAML, with a header saying how to use it. */
export function renderBootstrap(o: BootstrapOptions): string {
  const header = [
    `# Envoy bootstrap for ${o.nodeId} (${o.serviceAccount} in ${o.namespace}), generated by meshward.`,
    `# Listeners, routes, clusters and endpoints come from meshward over ADS (${o.delta ? 'Delta' : 'State of the World'}),`,
    o.agentSocket
      ? `# certificates from the meshward agent on ${o.agentSocket} (cluster ${AGENT_SDS_CLUSTER}, no token), authorization from meshward ext_authz.`
      : '# certificates from meshward SDS, authorization from meshward ext_authz, all via the `meshward` cluster.',
    ...(o.meshwardUnaryAddress ? [`# ext_authz Check goes to meshward's unary gRPC port ${o.meshwardUnaryAddress} (cluster ${MESHWARD_UNARY_CLUSTER}).`] : []),
    ...(o.agentXdsSocket
      ? [`# ADS goes through the agent's xDS proxy on ${o.agentXdsSocket}, which adds the current token: this file holds none.`]
      : [
        `# Replace ${o.tokenPlaceholder ?? DEFAULT_TOKEN_PLACEHOLDER} with the workload's token, e.g.:`,
        '#   MESHWARD_TOKEN=$(cat /var/run/secrets/tokens/meshward) envsubst < bootstrap.yaml > /etc/envoy/envoy.yaml',
      ]),
  ].join('\n');
  return `${header}\n${stringify(bootstrapObject(o), { lineWidth: 0 })}`;
}

/**
 * TLS to meshward. Envoy checks only the chain against `trusted_ca` unless told which names to
 * accept, so the certificate must also name the address dialled: otherwise any certificate from
 * that CA (a workload's SVID, if the mesh CA is used) could stand in for meshward.
 */
function meshwardTls(caFile: string, host: string, ipLiteral: boolean): object {
  return {
    name: FILTER.tls,
    typed_config: {
      '@type': TYPE.upstreamTls,
      // SNI carries host names only (RFC 6066).
      ...(ipLiteral ? {} : { sni: host }),
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: caFile },
          match_typed_subject_alt_names: [{ san_type: ipLiteral ? 'IP_ADDRESS' : 'DNS', matcher: { exact: host } }],
        },
      },
    },
  };
}
