import { describe, expect, it } from 'vitest';
import type { RateLimitDescriptor } from '../../src/config/kinds/rate-limit-policy.ts';
import { compileDescriptors, findLimit } from '../../src/limits/descriptors.ts';
import { entries } from './helpers.ts';

/** The reference service's README example, plus wildcard and per-value cases. */
const CONFIG: RateLimitDescriptor[] = [
  { key: 'to_cluster', value: 'mongo_cps', rate_limit: { unit: 'second', requests_per_unit: 500 } },
  {
    key: 'remote_address', rate_limit: { unit: 'second', requests_per_unit: 10 },
    descriptors: [{ key: 'path', value: '/login', rate_limit: { unit: 'minute', requests_per_unit: 5 } }],
  },
  { key: 'remote_address', value: '10.0.0.1', rate_limit: { unit: 'second', requests_per_unit: 1000 } },
  {
    key: 'key1', value: 'value1',
    descriptors: [
      { key: 'subkey1', rate_limit: { unit: 'hour', requests_per_unit: 7 } },
      { key: 'subkey1', value: 'exact', rate_limit: { unit: 'hour', requests_per_unit: 8 } },
    ],
  },
  { key: 'user', value: 'svc-*', rate_limit: { unit: 'second', requests_per_unit: 50 } },
  { key: 'user', rate_limit: { unit: 'second', requests_per_unit: 2 } },
  { key: 'api', value: 'internal', rate_limit: { unlimited: true } },
  { key: 'shadowed', shadow_mode: true, rate_limit: { unit: 'day', requests_per_unit: 1 } },
];

const root = compileDescriptors(CONFIG);
const limitOf = (...pairs: [string, string][]) => findLimit(root, entries(...pairs));

describe('descriptor matching like the reference service', () => {
  it('matches key+value exactly', () => {
    expect(limitOf(['to_cluster', 'mongo_cps'])?.requestsPerUnit).toBe(500);
    expect(limitOf(['to_cluster', 'other'])).toBeUndefined();
  });

  it('tries key+value before the bare key (per-value default)', () => {
    expect(limitOf(['remote_address', '10.0.0.1'])?.requestsPerUnit).toBe(1000);
    expect(limitOf(['remote_address', '10.0.0.2'])?.requestsPerUnit).toBe(10);
  });

  it('walks nested descriptors one level per entry', () => {
    expect(limitOf(['remote_address', '10.0.0.2'], ['path', '/login'])).toMatchObject({ requestsPerUnit: 5, unit: 'minute', path: 'remote_address.path_/login' });
    expect(limitOf(['key1', 'value1'], ['subkey1', 'anything'])?.requestsPerUnit).toBe(7);
    expect(limitOf(['key1', 'value1'], ['subkey1', 'exact'])?.requestsPerUnit).toBe(8);
  });

  it('applies no limit when the request is deeper or shallower than a limited node', () => {
    expect(limitOf(['to_cluster', 'mongo_cps'], ['extra', 'x'])).toBeUndefined();
    expect(limitOf(['key1', 'value1'])).toBeUndefined();
    // The nested /login limit does not apply to the 10.0.0.1 branch: that node has no children.
    expect(limitOf(['remote_address', '10.0.0.1'], ['path', '/login'])).toBeUndefined();
    expect(limitOf(['remote_address', '10.0.0.2'], ['path', '/other'])).toBeUndefined();
  });

  it('matches a trailing wildcard by prefix, before the bare key', () => {
    expect(limitOf(['user', 'svc-orders'])?.requestsPerUnit).toBe(50);
    expect(limitOf(['user', 'alice'])?.requestsPerUnit).toBe(2);
  });

  it('carries unlimited and shadow_mode', () => {
    expect(limitOf(['api', 'internal'])?.unlimited).toBe(true);
    expect(limitOf(['shadowed', 'x'])?.shadowMode).toBe(true);
  });

  it('matches nothing for unknown keys', () => {
    expect(limitOf(['nope', 'x'])).toBeUndefined();
  });
});
