/**
 * A histogram for per-check hot paths. `child(value).observe(seconds)` is a bucket search and three
 * number updates; the exposition is built at scrape time. prom-client's Histogram hashes its label
 * object on every observation, even through a `labels()` child: with four observations per
 * ext_authz check that measured 2.6 % of the main thread under load. It registers in a prom-client
 * registry like any metric and exposes the same text (a test compares both).
 */
import type { Metric, Registry } from 'prom-client';

export class FastHistogramChild {
  /** Per bucket (non-cumulative), then the overflow past the last bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface ExportedValue {
  value: number;
  /** prom-client's own histograms carry this (null without exemplars); kept for identical JSON. */
  exemplar?: null;
  labels: Record<string, string | number>;
  metricName: string;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #label: string;
  readonly #bounds: readonly number[];
  readonly #children = new Map<string, FastHistogramChild>();

  private constructor(name: string, help: string, label: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#label = label;
    this.#bounds = [...bounds].sort((a, b) => a - b);
  }

  /** The histogram of that name in the registry, registering it on first use. */
  static in(registry: Registry, name: string, help: string, label: string, bounds: readonly number[]): FastHistogram {
    const existing = registry.getSingleMetric(name) as unknown;
    if (existing instanceof FastHistogram) return existing;
    const h = new FastHistogram(name, help, label, bounds);
    registry.registerMetric(h as unknown as Metric);
    return h;
  }

  /** The series for one label value; keep it, it is the cheap handle. */
  child(labelValue: string): FastHistogramChild {
    let c = this.#children.get(labelValue);
    if (!c) this.#children.set(labelValue, (c = new FastHistogramChild(this.#bounds)));
    return c;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [labelValue, c] of this.#children) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += c.counts[i]!;
        values.push({ exemplar: null, value: cumulative, labels: { le, [this.#label]: labelValue }, metricName: bucket });
      });
      values.push({ exemplar: null, value: c.count, labels: { le: '+Inf', [this.#label]: labelValue }, metricName: bucket });
      values.push({ value: c.sum, labels: { [this.#label]: labelValue }, metricName: `${this.name}_sum` });
      values.push({ value: c.count, labels: { [this.#label]: labelValue }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#children.clear();
  }
}
