/**
 * Pure generation: (mesh model, proxy) → the Envoy resources of that sidecar, by kind. No I/O, no
 * clock; the same inputs give byte-identical resources (so versions are content hashes).
 */
import type { GeneratedKind } from '../type-urls.ts';
import { BLACKHOLE, inboundCluster, serviceClusters } from './clusters.ts';
import { type Json, MESHWARD_CLUSTER, MESHWARD_UNARY_CLUSTER, sdsConfigSource } from './common.ts';
import { serviceLoadAssignments } from './endpoints.ts';
import { inboundListener, outboundListener, virtualOutboundListener } from './listeners.ts';
import { serviceKey, type MeshModel, type MeshService } from './model.ts';
import { outboundRouteConfiguration } from './routes.ts';

export { compileModel, type MeshModel, type MeshService } from './model.ts';
export { MESHWARD_CLUSTER, MESHWARD_UNARY_CLUSTER, SDS_CERT, SDS_ROOT } from './common.ts';
export * from './names.ts';
export { proxylessClusters, proxylessListenersAndRoutes, proxylessRouteName } from './proxyless.ts';

/** What generation needs to know about a proxy (its authenticated identity, resolved). */
export interface ProxyTarget {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly service?: string;
  /** A proxyless gRPC client (see proxyless.ts), not an Envoy sidecar, and how it reaches services. */
  readonly proxyless?: 'plaintext' | 'mtls';
  /** Its ext_authz filter calls the `meshward-unary` cluster (meshward's unary port) instead of `meshward`. */
  readonly unaryAuthz?: true;
}

export type GeneratedResources = Record<GeneratedKind, Json[]>;

/** Services by outbound port, split HTTP (routed by RDS) / TCP (by address). */
function byPort(services: Iterable<MeshService>): Map<number, { http: MeshService[]; tcp: MeshService[] }> {
  const ports = new Map<number, { http: MeshService[]; tcp: MeshService[] }>();
  for (const svc of services) {
    for (const p of svc.spec.ports) {
      const entry = ports.get(p.port) ?? { http: [], tcp: [] };
      (p.protocol === 'TCP' ? entry.tcp : entry.http).push(svc);
      ports.set(p.port, entry);
    }
  }
  return new Map([...ports].sort(([a], [b]) => a - b));
}

/** The sidecar's own Service, only if it really runs as the proxy's service account. */
function ownService(model: MeshModel, proxy: ProxyTarget): MeshService | undefined {
  if (!proxy.service) return undefined;
  const svc = model.services.get(serviceKey(proxy.service, proxy.namespace));
  return svc && svc.spec.serviceAccount === proxy.serviceAccount ? svc : undefined;
}

/** Proxy-independent: every outbound cluster and endpoint assignment, and the outbound listeners. */
export function outboundResources(model: MeshModel): Pick<GeneratedResources, 'cluster' | 'endpoint' | 'listener'> {
  const services = [...model.services.values()];
  const listeners: Json[] = [virtualOutboundListener()];
  for (const [port, { http, tcp }] of byPort(services)) {
    const listener = outboundListener(port, http, tcp, model.mesh);
    if ((listener.filter_chains as unknown[]).length > 0) listeners.push(listener);
  }
  return { cluster: [BLACKHOLE, ...services.flatMap((s) => serviceClusters(s, sdsConfigSource(model.mesh)))], endpoint: services.flatMap(serviceLoadAssignments), listener: listeners };
}

/** The outbound RouteConfigurations seen from a namespace (short host names resolve within it). */
export function outboundRoutes(model: MeshModel, callerNamespace: string): Json[] {
  const routes: Json[] = [];
  for (const [port, { http }] of byPort(model.services.values())) {
    if (http.length) routes.push(outboundRouteConfiguration(port, http, model, callerNamespace));
  }
  return routes;
}

/** The inbound side of a sidecar: its listener and local clusters (empty for a client-only workload). */
export function inboundResources(model: MeshModel, proxy: ProxyTarget): Pick<GeneratedResources, 'cluster' | 'listener'> {
  const own = ownService(model, proxy);
  return own ? { listener: [inboundListener(own, model.mesh, proxy.unaryAuthz ? MESHWARD_UNARY_CLUSTER : MESHWARD_CLUSTER)], cluster: own.spec.ports.map(inboundCluster) } : { listener: [], cluster: [] };
}

/** Everything one sidecar gets (the three parts above, combined). */
export function generateResources(model: MeshModel, proxy: ProxyTarget): GeneratedResources {
  const out = outboundResources(model);
  const inbound = inboundResources(model, proxy);
  return {
    cluster: [...out.cluster, ...inbound.cluster],
    endpoint: out.endpoint,
    listener: [...out.listener, ...inbound.listener],
    route: outboundRoutes(model, proxy.namespace),
  };
}
