import { describe, expect, it } from 'vitest';
import { WorkloadCache } from '../../src/lib/workload-cache.ts';

describe('WorkloadCache', () => {
  it('computes once per workload content, whether the same object or an equal one is passed', () => {
    let computed = 0;
    const cache = new WorkloadCache((w: { namespace?: string; labels: Record<string, string> }) => `${++computed}:${w.namespace}`);
    const a = Object.freeze({ namespace: 'shop', labels: Object.freeze({ app: 'orders' }) });
    expect(cache.get(a)).toBe('1:shop');
    expect(cache.get(a)).toBe('1:shop');
    expect(cache.get({ namespace: 'shop', labels: { app: 'orders' } })).toBe('1:shop');
    expect(cache.get({ namespace: 'shop', labels: { app: 'web' } })).toBe('2:shop');
    expect(cache.get({ labels: { app: 'orders' } })).toBe('3:undefined');
    expect(computed).toBe(3);
  });

  it('forgets content keys once it holds its bound, and computes again', () => {
    let computed = 0;
    const cache = new WorkloadCache((w: { labels: Record<string, string> }) => {
      computed++;
      return w.labels.app;
    }, 2);
    cache.get({ labels: { app: 'a' } });
    cache.get({ labels: { app: 'b' } });
    cache.get({ labels: { app: 'c' } }); // clears, then holds c
    cache.get({ labels: { app: 'a' } });
    expect(computed).toBe(4);
  });
});
