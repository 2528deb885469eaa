import { describe, expect, it } from 'vitest';
import { FastHistogram } from '../../src/lib/fast-histogram.ts';
import { createRegistry, Histogram } from '../../src/lib/metrics.ts';

const BUCKETS = [0.00001, 0.0001, 0.001, 0.01];

describe('FastHistogram', () => {
  it('exposes exactly what a prom-client Histogram fed the same observations exposes', async () => {
    const fastRegistry = createRegistry();
    const promRegistry = createRegistry();
    const fast = FastHistogram.in(fastRegistry, 'x_seconds', 'Time per stage.', 'stage', BUCKETS);
    const prom = new Histogram({ name: 'x_seconds', help: 'Time per stage.', labelNames: ['stage'], buckets: BUCKETS, registers: [promRegistry] });
    const observations: [string, number][] = [['authn', 0.000004], ['authn', 0.00001], ['authz', 0.0005], ['authz', 0.02], ['limits', 0.00002], ['authn', 0.0009]];
    for (const [stage, v] of observations) {
      fast.child(stage).observe(v);
      prom.observe({ stage }, v);
    }
    expect(await fastRegistry.metrics()).toBe(await promRegistry.metrics());
    expect(await fastRegistry.getMetricsAsJSON()).toEqual(await promRegistry.getMetricsAsJSON());
  });

  it('counts a value equal to a bound in that bucket and a value past the last bound only in +Inf', async () => {
    const registry = createRegistry();
    const h = FastHistogram.in(registry, 'y_seconds', 'help', 'stage', BUCKETS);
    h.child('a').observe(0.0001);
    h.child('a').observe(5);
    const text = await registry.metrics();
    expect(text).toContain('y_seconds_bucket{le="0.0001",stage="a"} 1');
    expect(text).toContain('y_seconds_bucket{le="0.01",stage="a"} 1');
    expect(text).toContain('y_seconds_bucket{le="+Inf",stage="a"} 2');
    expect(text).toContain('y_seconds_count{stage="a"} 2');
  });

  it('returns the registered instance for the same name, so several checks in one process share it', () => {
    const registry = createRegistry();
    expect(FastHistogram.in(registry, 'z_seconds', 'help', 'stage', BUCKETS)).toBe(FastHistogram.in(registry, 'z_seconds', 'help', 'stage', BUCKETS));
  });
});
