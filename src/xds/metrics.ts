/** xDS metrics (names follow Istio's pilot_* where one exists, prefixed meshward_xds_). */
import { counter, gauge, histogram, type Registry } from '../lib/metrics.ts';

const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function xdsMetrics(registry: Registry) {
  return {
    connected: gauge(registry, 'meshward_xds_connected_proxies', 'Proxies connected on ADS streams.', ['mode']),
    responses: counter(registry, 'meshward_xds_responses_total', 'Discovery responses sent, by type.', ['type']),
    nacks: counter(registry, 'meshward_xds_nacks_total', 'Responses rejected by proxies (NACK), by type.', ['type']),
    staleNonces: counter(registry, 'meshward_xds_stale_nonces_total', 'Requests ignored because their nonce was not the latest sent.', ['type']),
    rejected: counter(registry, 'meshward_xds_rejected_streams_total', 'Streams refused (authentication, node mismatch, bad request), by error code.', ['code']),
    pushes: counter(registry, 'meshward_xds_pushes_total', 'Configuration pushes to all connected proxies, by result.', ['result']),
    pushSeconds: histogram(registry, 'meshward_xds_push_seconds', 'Time to generate and send one push to every connected proxy.', [], SECONDS),
    convergence: histogram(registry, 'meshward_xds_convergence_seconds', 'Time from a configuration change to the proxy acknowledging every pushed type (pilot_proxy_convergence_time).', [], SECONDS),
  };
}

export type XdsMetrics = ReturnType<typeof xdsMetrics>;
