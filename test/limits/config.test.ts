import { describe, expect, it } from 'vitest';
import { ConfigInvalidError } from '../../src/config/index.ts';
import { rateLimitPolicy, snapshotOf } from './helpers.ts';

function issues(yaml: string): string[] {
  try {
    snapshotOf(yaml);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe('RateLimitPolicy validation (the reference service load checks)', () => {
  it('accepts a reference-service descriptor tree, units in either case', () => {
    expect(issues(rateLimitPolicy('ok', `  domain: d
  descriptors:
    - key: a
      rate_limit: { unit: SECOND, requests_per_unit: 5, name: a }
      descriptors:
        - key: b
          value: v*
          rate_limit: { unit: month, requests_per_unit: 1, replaces: [{ name: a }] }
    - key: c
      rate_limit: { unlimited: true }
      shadow_mode: true
      detailed_metric: true`))).toEqual([]);
  });

  it('rejects unknown keys anywhere in the tree', () => {
    expect(issues(rateLimitPolicy('bad', `  domain: d
  descriptors:
    - key: a
      descriptors:
        - key: b
          rate_limit: { unit: second, requests_per_unit: 1, burst: 3 }`)).join('\n')).toMatch(/spec\.descriptors\[0\]\.descriptors\[0\]\.rate_limit\.burst: unknown field/);
  });

  it('rejects duplicate composite keys at one level', () => {
    expect(issues(rateLimitPolicy('dup', `  domain: d
  descriptors:
    - { key: a, value: x, rate_limit: { unit: second, requests_per_unit: 1 } }
    - { key: a, value: x, rate_limit: { unit: second, requests_per_unit: 2 } }`)).join('\n')).toMatch(/duplicate descriptor composite key "a_x"/);
  });

  it('rejects an unlimited limit with a unit, and a limit without one', () => {
    const got = issues(rateLimitPolicy('u', `  domain: d
  descriptors:
    - { key: a, rate_limit: { unlimited: true, unit: second } }
    - { key: b, rate_limit: { requests_per_unit: 3 } }`)).join('\n');
    expect(got).toMatch(/descriptors\[0\]\.rate_limit: an unlimited rate_limit must not set unit/);
    expect(got).toMatch(/descriptors\[1\]\.rate_limit: rate_limit needs unit and requests_per_unit/);
  });

  it('rejects a limit replacing itself and a wildcard not at the end', () => {
    const got = issues(rateLimitPolicy('r', `  domain: d
  descriptors:
    - { key: a, rate_limit: { name: n, unit: second, requests_per_unit: 1, replaces: [{ name: n }] } }
    - { key: b, value: "x*y", rate_limit: { unit: second, requests_per_unit: 1 } }`)).join('\n');
    expect(got).toMatch(/must not replace itself/);
    expect(got).toMatch(/only allowed at the end/);
  });

  it('rejects two policies with the same domain', () => {
    const one = rateLimitPolicy('one', '  domain: same\n  descriptors: [{ key: a, rate_limit: { unit: second, requests_per_unit: 1 } }]');
    const two = rateLimitPolicy('two', '  domain: same\n  descriptors: [{ key: b, rate_limit: { unit: second, requests_per_unit: 1 } }]');
    expect(issues(`${one}---\n${two}`).join('\n')).toMatch(/duplicate domain "same"/);
  });

  it('requires each request-descriptor action to set exactly one source', () => {
    expect(issues(rateLimitPolicy('a', `  domain: d
  descriptors: [{ key: a, rate_limit: { unit: second, requests_per_unit: 1 } }]
  requestDescriptors:
    - actions:
        - { sourcePrincipal: {}, genericKey: { descriptorValue: x } }`)).join('\n')).toMatch(/actions\[0\]: an action sets exactly one of/);
  });
});
