/** Resource names, Istio-compatible so `istioctl`-trained eyes read them (and Envoy stats stay familiar). */

/** Outbound cluster (also its EDS service name): `outbound|8080|v1|orders.shop.svc.cluster.local`. */
export function outboundClusterName(port: number, subset: string | undefined, fqdn: string): string {
  return `outbound|${port}|${subset ?? ''}|${fqdn}`;
}

/** Inbound cluster to the local application port: `inbound|8080||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** Outbound RDS route configuration per port, shared by every service on it. */
export function outboundRouteName(port: number): string {
  return String(port);
}

export const VIRTUAL_INBOUND = 'virtualInbound';
export const VIRTUAL_OUTBOUND = 'virtualOutbound';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
/** Inbound capture port (iptables REDIRECT target), as Istio. */
export const INBOUND_CAPTURE_PORT = 15006;
/** Outbound capture port, as Istio. */
export const OUTBOUND_CAPTURE_PORT = 15001;

export function outboundListenerName(port: number): string {
  return `0.0.0.0_${port}`;
}
