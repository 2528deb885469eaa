import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalog, MeshwardError, toExitCode, toGrpcStatus, toHttpStatus } from '../../src/lib/errors.ts';
import '../../src/config/index.ts';

describe('error catalog', () => {
  it('maps every code to a gRPC status, an HTTP status and an exit code', () => {
    for (const [code, spec] of errorCatalog()) {
      expect(code).toMatch(/^[A-Za-z_]+$/);
      expect(spec.http).toBeGreaterThanOrEqual(400);
      expect(spec.exit).toBeGreaterThan(0);
      expect(spec.description.length).toBeGreaterThan(5);
    }
  });

  it('maps unknown errors to INTERNAL', () => {
    const err = new Error('boom');
    expect(toHttpStatus(err)).toBe(500);
    expect(toGrpcStatus(err)).toBe(13);
    expect(toExitCode(err)).toBe(70);
  });

  it('refuses an unregistered code', () => {
    expect(() => new MeshwardError('NO_SUCH_CODE', 'x')).toThrow(/unregistered error code/);
  });

  it('is documented in the error catalog (docs/errors.md, generated)', () => {
    const readme = readFileSync('docs/errors.md', 'utf8');
    for (const code of errorCatalog().keys()) expect(readme, code).toContain(`\`${code}\``);
  });
});
