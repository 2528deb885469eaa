/** EDS: a ClusterLoadAssignment per outbound cluster, endpoints filtered by the subset's labels. */
import { type ServiceSpec, selectorMatches } from '../../config/index.ts';
import { socketAddress, type Json } from './common.ts';
import type { MeshService } from './model.ts';
import { outboundClusterName } from './names.ts';

/** The LbEndpoints of the service's endpoints a subset selects (by labels), at the port's target port (Envoy and proxyless gRPC alike). */
export function subsetLbEndpoints(svc: MeshService, port: ServiceSpec['ports'][number], labels: Record<string, string>): Json[] {
  return svc.spec.endpoints
    .filter((e) => selectorMatches({ matchLabels: labels }, e.labels ?? {}))
    .map((e) => ({
      endpoint: { address: socketAddress(e.address, e.port ?? port.targetPort ?? port.port) },
      ...(e.weight ? { load_balancing_weight: { value: e.weight } } : {}),
    }));
}

export function serviceLoadAssignments(svc: MeshService): Json[] {
  const subsets = [{ name: undefined as string | undefined, labels: {} as Record<string, string> }, ...(svc.trafficPolicy?.subsets ?? [])];
  return svc.spec.ports.flatMap((port) => subsets.map((subset) => {
    const lbEndpoints = subsetLbEndpoints(svc, port, subset.labels);
    const name = outboundClusterName(port.port, subset.name, svc.fqdn);
    return { cluster_name: name, ...(lbEndpoints.length ? { endpoints: [{ lb_endpoints: lbEndpoints }] } : {}) };
  }));
}
