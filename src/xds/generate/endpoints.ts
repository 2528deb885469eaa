/** EDS: a ClusterLoadAssignment per outbound cluster, endpoints filtered by the subset's labels. */
import { selectorMatches } from '../../config/index.ts';
import { socketAddress, type Json } from './common.ts';
import type { MeshService } from './model.ts';
import { outboundClusterName } from './names.ts';

export function serviceLoadAssignments(svc: MeshService): Json[] {
  const subsets = [{ name: undefined as string | undefined, labels: {} as Record<string, string> }, ...(svc.trafficPolicy?.subsets ?? [])];
  return svc.spec.ports.flatMap((port) => subsets.map((subset) => {
    const lbEndpoints = svc.spec.endpoints
      .filter((e) => selectorMatches({ matchLabels: subset.labels }, e.labels ?? {}))
      .map((e) => ({
        endpoint: { address: socketAddress(e.address, e.port ?? port.targetPort ?? port.port) },
        ...(e.weight ? { load_balancing_weight: { value: e.weight } } : {}),
      }));
    const name = outboundClusterName(port.port, subset.name, svc.fqdn);
    return { cluster_name: name, ...(lbEndpoints.length ? { endpoints: [{ lb_endpoints: lbEndpoints }] } : {}) };
  }));
}
