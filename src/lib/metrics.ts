/** One prom-client registry per meshward instance (tests run several in one process). */
import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Registry, Counter, Gauge, Histogram };

export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'meshward_' });
  return registry;
}

/** Returns the metric of that name in the registry, creating it on first use. */
export function counter(registry: Registry, name: string, help: string, labelNames: string[] = []): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function gauge(registry: Registry, name: string, help: string, labelNames: string[] = []): Gauge {
  return (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

/**
 * A gauge read at scrape time from `read` (a plain number kept by the caller: nothing to update
 * on the hot path). Created on first use; a registry that has it already keeps the first reader.
 */
export function sampledGauge(registry: Registry, name: string, help: string, read: () => number): void {
  if (registry.getSingleMetric(name)) return;
  new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
}

export function histogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[] = [],
  buckets: number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
): Histogram {
  return (registry.getSingleMetric(name) as Histogram | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}
