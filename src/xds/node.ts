/**
 * Who a sidecar is: the node it announces (id + metadata, as Istio's `NAMESPACE`,
 * `SERVICE_ACCOUNT`, plus meshward's `SERVICE`) checked against the identity its credential
 * proves. A node may omit claims (they default to the proven identity) but never contradict it.
 */
import { XdsBadRequestError, XdsNodeMismatchError } from './errors.ts';
import type { WorkloadIdentity } from './identity.ts';

/** The `node` of a DiscoveryRequest as proto-loader decodes it (Struct stays {fields}). */
export interface NodeMessage {
  id?: string;
  cluster?: string;
  /** google.protobuf.Struct; protobufjs's bundled well-known types decode Value as camelCase `stringValue`. */
  metadata?: { fields?: Record<string, { stringValue?: string; string_value?: string; kind?: string }> };
  user_agent_name?: string;
  user_agent_version?: string;
}

export type ProxylessMode = 'plaintext' | 'mtls';

/** A proxy meshward generates configuration for: authenticated and resolved against the config. */
export interface ProxyIdentity {
  readonly nodeId: string;
  readonly cluster: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The Service whose inbound traffic this sidecar handles; absent for a client-only workload. */
  readonly service?: string;
  readonly spiffeId: string;
  readonly via: string;
  readonly userAgent?: string;
  /**
   * A gRPC library's xDS client (no Envoy): gets API listeners and EDS clusters, plain text or,
   * when its bootstrap declares the `default` certificate provider (`MESHWARD_MTLS: "true"`), mTLS.
   */
  readonly proxyless?: ProxylessMode;
  /**
   * The sidecar's bootstrap has the `meshward-unary` cluster (`proxy bootstrap --unary-meshward`,
   * node metadata `MESHWARD_UNARY_AUTHZ: "true"`): its ext_authz filter calls meshward's unary port.
   */
  readonly unaryAuthz?: true;
}

function metadataString(node: NodeMessage, key: string): string | undefined {
  const field = node.metadata?.fields?.[key];
  const v = field?.stringValue ?? field?.string_value;
  return v === undefined || v === '' ? undefined : v;
}

/** Istio's node id `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`: the namespace part. */
function namespaceFromIstioId(id: string): string | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const pod = parts[2]!;
  const dot = pod.lastIndexOf('.');
  return dot > 0 ? pod.slice(dot + 1) : undefined;
}

/**
 * Checks the node's claims against the authenticated identity and resolves its Service.
 * Throws XdsNodeMismatchError when a claim contradicts the identity.
 */
/** What resolving a proxy needs from the configuration (the mesh model indexes it). */
export interface ServiceDirectory {
  /** The service account a Service runs as, or undefined if there is no such Service. */
  serviceAccountOf(name: string, namespace: string): string | undefined;
  /** Names of the Services of a namespace running as a service account. */
  servicesRunningAs(namespace: string, serviceAccount: string): readonly string[];
}

export function resolveProxy(node: NodeMessage | undefined, identity: WorkloadIdentity, directory: ServiceDirectory): ProxyIdentity {
  if (!node?.id) throw new XdsBadRequestError('the first request of an xDS stream must carry node.id');
  const claimedNs = metadataString(node, 'NAMESPACE') ?? namespaceFromIstioId(node.id);
  const claimedSa = metadataString(node, 'SERVICE_ACCOUNT');
  if (claimedNs !== undefined && claimedNs !== identity.namespace) {
    throw new XdsNodeMismatchError(`node ${node.id} claims namespace "${claimedNs}" but authenticated as ${identity.spiffeId}`, { nodeId: node.id, claimed: claimedNs });
  }
  if (claimedSa !== undefined && claimedSa !== identity.serviceAccount) {
    throw new XdsNodeMismatchError(`node ${node.id} claims service account "${claimedSa}" but authenticated as ${identity.spiffeId}`, { nodeId: node.id, claimed: claimedSa });
  }
  const service = resolveService(node, identity, directory);
  const agent = node.user_agent_name ? `${node.user_agent_name}${node.user_agent_version ? `/${node.user_agent_version}` : ''}` : undefined;
  return {
    nodeId: node.id,
    cluster: node.cluster ?? '',
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    ...(service ? { service } : {}),
    spiffeId: identity.spiffeId,
    via: identity.via,
    ...(agent ? { userAgent: agent } : {}),
    ...(metadataString(node, 'MESHWARD_UNARY_AUTHZ') === 'true' ? { unaryAuthz: true as const } : {}),
    ...(isProxylessGrpc(node) ? { proxyless: metadataString(node, 'MESHWARD_MTLS') === 'true' ? 'mtls' as const : 'plaintext' as const } : {}),
  };
}

/**
 * A proxyless gRPC client: Istio's `GENERATOR: grpc` node metadata, or a gRPC library's xDS client
 * (user agents "gRPC Go", "gRPC Node Pure JS", "gRPC Java", "gRPC C-core ..."). Envoy says "envoy".
 */
export function isProxylessGrpc(node: NodeMessage): boolean {
  return metadataString(node, 'GENERATOR') === 'grpc' || /^grpc\b/i.test(node.user_agent_name ?? '');
}

/**
 * The Service a sidecar fronts: the one named by `SERVICE` metadata (which must run as the
 * authenticated service account), else the only Service of that namespace running as it.
 */
function resolveService(node: NodeMessage, identity: WorkloadIdentity, directory: ServiceDirectory): string | undefined {
  const claimed = metadataString(node, 'SERVICE');
  if (claimed !== undefined) {
    const account = directory.serviceAccountOf(claimed, identity.namespace);
    // A Service not (yet) in the configuration is allowed: the sidecar gets it when it appears.
    if (account !== undefined && account !== identity.serviceAccount) {
      throw new XdsNodeMismatchError(`node ${node.id} claims service "${claimed}", which runs as service account "${account}", but authenticated as ${identity.spiffeId}`, { nodeId: node.id, claimed });
    }
    return claimed;
  }
  const mine = directory.servicesRunningAs(identity.namespace, identity.serviceAccount);
  return mine.length === 1 ? mine[0] : undefined;
}

/** Proxies with the same key get the same resources (generation is cached per key). */
export function proxyKey(p: Pick<ProxyIdentity, 'namespace' | 'serviceAccount' | 'service' | 'proxyless' | 'unaryAuthz'>): string {
  return `${p.namespace}/${p.serviceAccount}/${p.service ?? ''}${p.proxyless ? `/grpc-${p.proxyless}` : ''}${p.unaryAuthz ? '/unary' : ''}`;
}
