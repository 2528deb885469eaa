/** The xDS resource types meshward serves, their protos and the order pushes follow. */

export const TYPE_URLS = {
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

export type ResourceKind = keyof typeof TYPE_URLS;
export type TypeUrl = (typeof TYPE_URLS)[ResourceKind];

/**
 * Envoy's make-before-break order: certificates first (clusters and listeners warm until their
 * secrets arrive), clusters (CDS) before the endpoints that fill them (EDS), both
 * before the listeners (LDS) and routes (RDS) that send traffic to them. Removals go the other way.
 * See https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
 */
export const PUSH_ORDER: readonly ResourceKind[] = ['secret', 'cluster', 'endpoint', 'listener', 'route'];

/** Kinds generated from the configuration; secrets come from the CA per proxy (SDS over ADS). */
export const GENERATED_KINDS = ['cluster', 'endpoint', 'listener', 'route'] as const;
export type GeneratedKind = (typeof GENERATED_KINDS)[number];

const KIND_BY_URL = new Map<string, ResourceKind>(Object.entries(TYPE_URLS).map(([k, v]) => [v, k as ResourceKind]));

/** The kind of a type URL meshward serves, or undefined for any other type. */
export function kindOf(typeUrl: string): ResourceKind | undefined {
  return KIND_BY_URL.get(typeUrl);
}

/** Fully qualified proto message name of a kind, for encoding. */
export function messageNameOf(kind: ResourceKind): string {
  return TYPE_URLS[kind].slice('type.googleapis.com/'.length);
}

/** LDS and CDS are wildcard-capable: an empty subscription means "all of them". */
export function isWildcardKind(kind: ResourceKind): boolean {
  return kind === 'listener' || kind === 'cluster';
}
