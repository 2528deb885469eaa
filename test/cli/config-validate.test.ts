import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { doc, removeDir, SERVICE_ORDERS, tempDir, writeConfigDir } from '../helpers/config.ts';

const BIN = 'bin/meshward-dev.js'; // the sources through tsx, never a stale dist/
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function validate(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'config', 'validate', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dirWith(files: Record<string, string>): string {
  const d = writeConfigDir(files);
  dirs.push(d);
  return d;
}

const BROKEN_ORDERS = SERVICE_ORDERS.replace('  serviceAccount: orders\n', '  serviceAccount: orders\n   owner: shop-team\n');
const ROUTE_TO_ORDERS = doc('Route', 'r', 'hosts: [orders]\nhttp:\n  - route:\n      - destination: { host: orders }', 'shop');

describe('meshward config validate', () => {
  it('prints the syntax error first with line:column, and no cascading "not found" errors', () => {
    const dir = dirWith({ 'a-route.yaml': ROUTE_TO_ORDERS, 'svc.yaml': BROKEN_ORDERS });
    const r = validate(dir);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/svc\.yaml:7:19: YAML syntax error: /);
    expect(r.stderr).not.toMatch(/not found:|Service "orders" not found|names no Service/);
    expect(r.stderr).toMatch(/note: 2 errors about documents not found are not shown: they may be defined in .*svc\.yaml, which did not parse/);
    expect(lines.at(-1)).toBe('2 errors'); // the two syntax errors; the note is not counted
  });

  it('validates a single file against the other documents of its directory', () => {
    const dir = dirWith({ 'svc.yaml': SERVICE_ORDERS, 'route.yaml': ROUTE_TO_ORDERS });
    const r = validate(path.join(dir, 'route.yaml'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/route\.yaml: valid \(1 document, checked against the 1 other documents in /);
  });

  it('shows only the named file\'s errors, and counts the others', () => {
    const dir = dirWith({
      'authz.yaml': doc('AuthorizationPolicy', 'p', 'acton: ALLOW'),
      'route.yaml': doc('Route', 'r', 'hosts: [orders]\nhttp:\n  - route:\n      - destination: { host: payments }', 'shop'),
      'svc.yaml': SERVICE_ORDERS,
    });
    const r = validate(path.join(dir, 'authz.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/authz\.yaml:7: spec\.acton: unknown field \(did you mean "action"\?\)/);
    expect(r.stderr).not.toMatch(/payments/);
    expect(r.stderr).toMatch(/note: 1 error in other files of .* not shown/);
  });

  it('refuses a file that is not YAML or JSON', () => {
    const dir = dirWith({ 'policy.rego': 'package x' });
    const r = validate(path.join(dir, 'policy.rego'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/policy\.rego: not a configuration file \(\.yaml, \.yml or \.json\)/);
  });

  it('warns and exits 1 for a directory without documents, 0 with --allow-empty', () => {
    const dir = tempDir('mw-empty-');
    dirs.push(dir);
    const r = validate(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/warning: .*: no configuration documents found/);
    const allowed = validate(dir, '--allow-empty');
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toMatch(/warning: .*: no configuration documents found\n$/);
  });

  it('names a missing directory without a line number', () => {
    const r = validate('/nonexistent/meshward-config');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\/nonexistent\/meshward-config: configuration directory not found$/m);
  });
});
