/**
 * The mesh as xDS generation sees it, compiled once per configuration snapshot (never per proxy):
 * services with their FQDNs, the Route and TrafficPolicy that apply to each.
 */
import type { ConfigDocument, ConfigSnapshot, HttpRoute, ResolvedMeshSpec, RouteSpec, ServiceSpec, TrafficPolicySpec } from '../../config/index.ts';
import { resolveServiceHost } from '../../config/index.ts';

/** Kubernetes' cluster DNS suffix (the names apps resolve), not the SPIFFE trust domain. */
export const CLUSTER_DNS_SUFFIX = 'svc.cluster.local';

export interface MeshService {
  readonly name: string;
  readonly namespace: string;
  /** `name.namespace.svc.cluster.local` */
  readonly fqdn: string;
  readonly spec: ServiceSpec;
  /** SPIFFE ID its workloads present (checked by callers' upstream TLS). */
  readonly spiffeId: string;
  /** HTTP rules from the Route whose hosts name this service (first matching Route wins; validation rejects two). */
  readonly httpRules?: readonly HttpRoute[];
  /** Namespace of that Route (destination hosts resolve relative to it). */
  readonly routeNamespace?: string;
  readonly trafficPolicy?: TrafficPolicySpec;
}

export interface MeshModel {
  readonly version: string;
  /** The service account a Service runs as (node resolution). */
  serviceAccountOf(name: string, namespace: string): string | undefined;
  /** Services of a namespace running as a service account, in configuration order. */
  servicesRunningAs(namespace: string, serviceAccount: string): readonly string[];
  readonly mesh: Readonly<ResolvedMeshSpec>;
  /** By `name.namespace`, in configuration order. */
  readonly services: ReadonlyMap<string, MeshService>;
  /** Resolves a Route destination host (relative to a namespace) to a service. */
  resolve(host: string, namespace: string): MeshService | undefined;
}

export function serviceKey(name: string, namespace: string): string {
  return `${name}.${namespace}`;
}

export function compileModel(snapshot: ConfigSnapshot): MeshModel {
  const docs = snapshot.byKind<ServiceSpec>('Service');
  const find = (kind: string, name: string, namespace: string) =>
    snapshot.documents.find((d) => d.kind === kind && d.metadata.name === name && d.metadata.namespace === namespace);
  const routes = new Map<ConfigDocument, ConfigDocument<RouteSpec>>();
  for (const r of snapshot.byKind<RouteSpec>('Route')) {
    for (const host of r.spec.hosts) {
      const svc = resolveServiceHost(host, r.metadata.namespace, { find });
      if (svc && !routes.has(svc)) routes.set(svc, r);
    }
  }
  const policies = new Map<ConfigDocument, TrafficPolicySpec>();
  for (const tp of snapshot.byKind<TrafficPolicySpec>('TrafficPolicy')) {
    const svc = resolveServiceHost(tp.spec.host, tp.metadata.namespace, { find });
    if (svc && !policies.has(svc)) policies.set(svc, tp.spec);
  }
  const services = new Map<string, MeshService>();
  for (const d of docs) {
    const route = routes.get(d);
    const policy = policies.get(d);
    services.set(serviceKey(d.metadata.name, d.metadata.namespace), Object.freeze({
      name: d.metadata.name,
      namespace: d.metadata.namespace,
      fqdn: `${d.metadata.name}.${d.metadata.namespace}.${CLUSTER_DNS_SUFFIX}`,
      spec: d.spec,
      spiffeId: `spiffe://${snapshot.mesh.trustDomain}/ns/${d.metadata.namespace}/sa/${d.spec.serviceAccount}`,
      ...(route ? { httpRules: route.spec.http, routeNamespace: route.metadata.namespace } : {}),
      ...(policy ? { trafficPolicy: policy } : {}),
    }));
  }
  const byAccount = new Map<string, string[]>();
  for (const svc of services.values()) {
    const key = `${svc.namespace}/${svc.spec.serviceAccount}`;
    byAccount.set(key, [...(byAccount.get(key) ?? []), svc.name]);
  }
  return {
    version: snapshot.version,
    mesh: snapshot.mesh,
    services,
    serviceAccountOf: (name, namespace) => services.get(serviceKey(name, namespace))?.spec.serviceAccount,
    servicesRunningAs: (namespace, serviceAccount) => byAccount.get(`${namespace}/${serviceAccount}`) ?? [],
    resolve(host, namespace) {
      const parts = host.replace(new RegExp(`\\.${CLUSTER_DNS_SUFFIX.replaceAll('.', '\\.')}$`), '').split('.');
      if (parts.length === 1) return services.get(serviceKey(parts[0]!, namespace));
      if (parts.length === 2) return services.get(serviceKey(parts[0]!, parts[1]!));
      return undefined;
    },
  };
}
