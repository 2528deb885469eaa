/** Metrics of the Workload API server (prom-client, in the agent's registry). */
import { counter, gauge, type Counter, type Gauge, type Registry } from '../../lib/metrics.ts';

export interface WorkloadApiMetrics {
  requests: Counter;
  streams: Gauge;
  pushes: Counter;
}

export function workloadApiMetrics(registry: Registry): WorkloadApiMetrics {
  return {
    requests: counter(registry, 'meshward_agent_workload_api_requests_total', 'Workload API calls by method and answered gRPC status (streams: status of the opening).', ['method', 'code']),
    streams: gauge(registry, 'meshward_agent_workload_api_streams', 'Open Workload API streams by method.', ['method']),
    pushes: counter(registry, 'meshward_agent_workload_api_pushes_total', 'Workload API stream messages sent (first answer, renewals, bundle changes).', ['method']),
  };
}
