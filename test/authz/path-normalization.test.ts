/** The path meshward matches is the one Envoy forwards under each Istio path normalization option. */
import { describe, expect, it } from 'vitest';
import { AuthzBadRequestError } from '../../src/authz/errors.ts';
import { normalizeRequestPath, otherReadings, type PathNormalization, strictestReading } from '../../src/authz/path-normalization.ts';

const MODES: PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

/** Request path → what each mode forwards, in MODES order (Istio's normalization table and integration cases). */
const TABLE: [string, string, string, string, string][] = [
  ['/', '/', '/', '/', '/'],
  ['/app/', '/app/', '/app/', '/app/', '/app/'],
  ['/app/../admin', '/app/../admin', '/admin', '/admin', '/admin'],
  ['/app//', '/app//', '/app//', '/app/', '/app/'],
  ['/app/%2f', '/app/%2f', '/app/%2f', '/app/%2f', '/app/'],
  ['/app%2f/', '/app%2f/', '/app%2f/', '/app%2f/', '/app/'],
  ['/xyz%30..//abc', '/xyz%30..//abc', '/xyz0..//abc', '/xyz0../abc', '/xyz0../abc'],
  ['/app/%2E./admin', '/app/%2E./admin', '/admin', '/admin', '/admin'],
  ['/app\\admin', '/app\\admin', '/app/admin', '/app/admin', '/app/admin'],
  ['/app/\\/\\/\\admin', '/app/\\/\\/\\admin', '/app//////admin', '/app/admin', '/app/admin'],
  ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc', '/app/admin/abc'],
  ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc', '/app/admin/abc'],
  ['/app//../admin', '/app//../admin', '/app/admin', '/app/admin', '/app/admin'],
  ['/app//../../admin', '/app//../../admin', '/admin', '/admin', '/admin'],
  ['/%c0%2e%c0%2e/admin', '/%c0%2e%c0%2e/admin', '/%c0.%c0./admin', '/%c0.%c0./admin', '/%c0.%c0./admin'],
  ['/public/..;/admin/x', '/public/..;/admin/x', '/admin/x', '/admin/x', '/admin/x'],
  ['/admin;a=b/xyz', '/admin;a=b/xyz', '/admin;a=b/xyz', '/admin;a=b/xyz', '/admin;a=b/xyz'],
  ['/ADMIN/x', '/ADMIN/x', '/ADMIN/x', '/ADMIN/x', '/ADMIN/x'],
  ['/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin', '/%252e%252e/admin'],
];

describe('normalizeRequestPath', () => {
  for (const [raw, ...want] of TABLE) {
    it(`forwards ${raw} as Envoy does under each option`, () => {
      expect(MODES.map((m) => normalizeRequestPath(raw, m))).toEqual(want);
    });
  }

  it('is idempotent: a path Envoy already normalized is matched unchanged', () => {
    for (const [raw] of TABLE) {
      for (const m of MODES) {
        const once = normalizeRequestPath(raw, m);
        expect(normalizeRequestPath(once, m), `${m} ${raw}`).toBe(once);
      }
    }
  });

  it('defaults to BASE', () => {
    expect(normalizeRequestPath('/a//b/../c\\d')).toBe('/a//c/d');
  });

  it('rejects a NUL byte, raw or encoded, under every option', () => {
    for (const m of MODES) {
      expect(() => normalizeRequestPath('/a%00b', m)).toThrow(AuthzBadRequestError);
      expect(() => normalizeRequestPath('/a\0b', m)).toThrow(/NUL/);
    }
  });
});

describe('the strictest reading DENY rules also match', () => {
  const cases: [string, string][] = [
    ['/admin%2Fx', '/admin/x'],
    ['/admin%5Cx', '/admin/x'],
    ['/x/..%2fadmin/y', '/admin/y'],
    ['/admin;x/y', '/admin/y'],
    ['/;/admin/x', '/admin/x'],
    ['/public/%2e%2e;x/admin', '/admin'],
    ['/admin;x%2Fy', '/admin/y'],
  ];
  for (const [raw, want] of cases) it(`reads ${raw} as ${want}`, () => expect(strictestReading(raw)).toBe(want));

  it('adds no reading to a plain path or one the mode already reads strictly', () => {
    expect(otherReadings('/api/orders/1', '/api/orders/1')).toBeUndefined();
    expect(otherReadings('/admin%2Fx', normalizeRequestPath('/admin%2Fx', 'DECODE_AND_MERGE_SLASHES'))).toBeUndefined();
    expect(otherReadings('/admin%2Fx', normalizeRequestPath('/admin%2Fx', 'BASE'))).toEqual(['/admin/x']);
  });

  it('keeps the case of the path (Istio does not lower-case)', () => {
    expect(strictestReading('/ADMIN/x')).toBe('/ADMIN/x');
  });
});
