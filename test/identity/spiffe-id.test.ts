import { describe, expect, it } from 'vitest';
import { parseSpiffeId, workloadSpiffeId } from '../../src/identity/index.ts';

describe('SPIFFE IDs', () => {
  it('accepts a well-formed workload ID', () => {
    expect(parseSpiffeId('spiffe://example.org/ns/shop/sa/orders')).toEqual({ trustDomain: 'example.org', path: '/ns/shop/sa/orders', uri: 'spiffe://example.org/ns/shop/sa/orders' });
    expect(workloadSpiffeId('cluster.local', 'shop', 'orders')).toBe('spiffe://cluster.local/ns/shop/sa/orders');
  });

  it.each([
    ['upper-case trust domain', 'spiffe://Example.org/ns/a/sa/b'],
    ['bad trust domain character', 'spiffe://exa$mple.org/ns/a'],
    ['empty segment', 'spiffe://example.org/ns//sa/b'],
    ['dot segment', 'spiffe://example.org/ns/./sa/b'],
    ['dot-dot segment', 'spiffe://example.org/ns/../sa/b'],
    ['trailing slash', 'spiffe://example.org/ns/a/'],
    ['query', 'spiffe://example.org/ns/a?x=1'],
    ['fragment', 'spiffe://example.org/ns/a#f'],
    ['port', 'spiffe://example.org:8443/ns/a'],
    ['user info', 'spiffe://user@example.org/ns/a'],
    ['wrong scheme', 'https://example.org/ns/a'],
    ['empty trust domain', 'spiffe:///ns/a'],
    ['percent-encoded segment', 'spiffe://example.org/ns/a%20b'],
    ['over 2048 bytes', `spiffe://example.org/${'a'.repeat(2040)}`],
  ])('refuses an ID with %s', (_what, id) => {
    expect(() => parseSpiffeId(id)).toThrow(expect.objectContaining({ code: 'SPIFFE_ID_INVALID' }));
  });

  it('refuses a namespace that is not a valid path segment', () => {
    expect(() => workloadSpiffeId('example.org', 'a/b', 'sa')).toThrow(expect.objectContaining({ code: 'SPIFFE_ID_INVALID' }));
  });
});
