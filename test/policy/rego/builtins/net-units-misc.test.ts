import { describe, expect, it } from 'vitest';
import { RegoSet } from '../../../../src/policy/rego/value.ts';
import { call, callError } from './helpers.ts';

const values = (v: unknown) => (v as RegoSet).values();

describe('net.cidr_*', () => {
  it('tests containment of addresses and subnets, IPv4 and IPv6', () => {
    expect(call('net.cidr_contains', '10.0.0.0/8', '10.1.0.0/24')).toBe(true);
    expect(call('net.cidr_contains', '172.17.0.0/24', '172.17.0.0/16')).toBe(false);
    expect(call('net.cidr_contains', '10.0.0.0/8', '192.168.1.1')).toBe(false);
    expect(call('net.cidr_contains', '2001:4860:4860::8888/32', '2001:4860:4860:1234::8888/40')).toBe(true);
    expect(call('net.cidr_contains', '2001:4860::/32', 'fd1e:5bfe:8af3:9ddc::/64')).toBe(false);
    expect(callError('net.cidr_contains', 'not-a-cidr', '1.2.3.4').code).toBe('eval_builtin_error');
  });

  it('detects intersections and validates CIDRs', () => {
    expect(call('net.cidr_intersects', '192.168.0.0/16', '192.168.1.0/24')).toBe(true);
    expect(call('net.cidr_intersects', '10.0.0.0/24', '10.0.1.0/24')).toBe(false);
    expect(call('net.cidr_is_valid', '10.0.0.0/33')).toBe(false);
    expect(call('net.cidr_is_valid', '::/0')).toBe(true);
  });

  it('expands and merges CIDRs like OPA, with classful defaults for bare IPv4', () => {
    expect(values(call('net.cidr_expand', '192.168.1.1/30'))).toEqual(['192.168.1.0', '192.168.1.1', '192.168.1.2', '192.168.1.3']);
    expect(callError('net.cidr_expand', '192.168.1.1/33').message).toBe('net.cidr_expand: invalid CIDR address: 192.168.1.1/33');
    expect(values(call('net.cidr_merge', ['192.0.2.112/31', '192.0.2.116/31', '192.0.2.118/31']))).toEqual(['192.0.2.112/31', '192.0.2.116/30']);
    expect(values(call('net.cidr_merge', ['192.0.2.112', '192.0.2.116/31']))).toEqual(['192.0.2.0/24']);
    expect(values(call('net.cidr_merge', ['2601:600:8a80:207e:a57d:7567:e2c9:e7b3/64', '::/0', 'fe80::1/128']))).toEqual(['::/0']);
    expect(values(call('net.cidr_merge', ['2601:600:8a80:207e:a57d:7567:e2c9:e7b3/64']))).toEqual(['2601:600:8a80:207e::/64']);
    expect(callError('net.cidr_merge', ['2601:600::1']).message).toBe('net.cidr_merge: IPv6 invalid: needs prefix length');
  });

  it('reports which addresses match which CIDRs by key', () => {
    expect(values(call('net.cidr_contains_matches', ['1.1.2.0/24', '1.1.1.0/24'], ['1.1.1.1', '1.1.2.1']))).toEqual([
      [0, 1],
      [1, 0],
    ]);
    expect(values(call('net.cidr_contains_matches', { k1: '1.1.1.1/24' }, '1.1.1.128'))).toEqual([['k1', '1.1.1.128']]);
    expect(callError('net.cidr_contains_matches', ['1.1.1.0/24'], ['1.1.1.1', 1]).message).toBe(
      'net.cidr_contains_matches: operand 2: element must be string or non-empty array',
    );
  });
});

describe('units', () => {
  it('parses SI and binary suffixes exactly', () => {
    expect(call('units.parse', '500m')).toBe(0.5);
    expect(call('units.parse', '0.0000005M')).toBe(0.5);
    expect(call('units.parse', '1.1Ki')).toBe(1126.4);
    expect(call('units.parse', '10Ei')).toBe(11529215046068469760n);
    expect(call('units.parse', '-3.5E2m')).toBe(-0.35);
    expect(call('units.parse', '1e-2')).toBe(0.01);
    expect(call('units.parse', '4E2G')).toBe(400000000000);
    expect(callError('units.parse', 'G').message).toBe('units.parse: no amount provided');
    expect(callError('units.parse', '100 k').message).toBe('units.parse: spaces not allowed in resource strings');
  });

  it('parses byte amounts, truncating fractions', () => {
    expect(call('units.parse_bytes', '1.1KiB')).toBe(1126);
    expect(call('units.parse_bytes', '"100TIB"')).toBe(109951162777600);
    expect(call('units.parse_bytes', '10KB')).toBe(10000);
    expect(callError('units.parse_bytes', '0.0.0').message).toBe('units.parse_bytes: could not parse byte amount to a number');
  });
});

describe('uuid, semver, graph', () => {
  it('parses UUIDs with version-specific fields', () => {
    expect(call('uuid.parse', '{00000000-0000-4000-8000-000000000000}')).toEqual({ variant: 'RFC4122', version: 4 });
    expect(call('uuid.parse', 'urn:uuid:000003e8-48b9-21ee-b200-325096b39f47')).toEqual({
      clocksequence: 12800,
      domain: 'Person',
      id: 1000,
      macvariables: 'local:unicast',
      nodeid: '32-50-96-b3-9f-47',
      time: 1693566990121469600n,
      variant: 'RFC4122',
      version: 2,
    });
    expect(call('uuid.parse', 'not-a-uuid')).toBeUndefined();
  });

  it('returns the same random UUID for the same key within one evaluation', () => {
    const a = call('uuid.rfc4122', 'k');
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('compares semantic versions including pre-releases', () => {
    expect(call('semver.compare', '1.0.0', '2.0.0')).toBe(-1);
    expect(call('semver.compare', '1.0.0-alpha.1', '1.0.0-alpha.beta')).toBe(-1);
    expect(call('semver.compare', '1.0.0', '1.0.0-rc.1')).toBe(1);
    expect(call('semver.compare', '1.0.0+build', '1.0.0')).toBe(0);
    expect(callError('semver.compare', '1.0.0', '1').message).toBe('semver.compare: operand 2: string "1" is not a valid SemVer');
    expect(call('semver.is_valid', 'v1.0.0')).toBe(false);
  });

  it('walks graphs for reachable nodes and paths', () => {
    const g = { a: new RegoSet(['b', 'c']), b: new RegoSet(['d']), c: new RegoSet(['d']), d: new RegoSet(), e: ['f'], f: ['e'] };
    expect(values(call('graph.reachable', g, new RegoSet(['b', 'e'])))).toEqual(['b', 'd', 'e', 'f']);
    expect(values(call('graph.reachable', {}, ['a']))).toEqual([]);
    expect(values(call('graph.reachable_paths', { a: ['b', 'c'], b: ['c'], c: [] }, ['a']))).toEqual([
      ['a', 'b', 'c'],
      ['a', 'c'],
    ]);
    expect(values(call('graph.reachable_paths', { a: ['b'], b: ['c'], c: ['a'] }, ['a']))).toEqual([['a', 'b', 'c']]);
    expect(callError('graph.reachable', 1, [1]).code).toBe('eval_type_error');
  });
});

describe('net.lookup_ip_addr, trace, opa.runtime', () => {
  it('resolves IP literals and hosts-file names without DNS, and refuses other names', () => {
    expect(values(call('net.lookup_ip_addr', '10.0.0.0'))).toEqual(['10.0.0.0']);
    expect(values(call('net.lookup_ip_addr', '::'))).toEqual(['::']);
    expect(callError('net.lookup_ip_addr', 'example.invalid').message).toContain('DNS lookups are disabled');
  });

  it('succeeds for trace and exposes no environment in opa.runtime', () => {
    expect(call('trace', 'note')).toBe(true);
    // As OPA embedded without runtime information: an empty object, never the process environment.
    expect(call('opa.runtime')).toEqual({});
  });
});
