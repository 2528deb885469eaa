import { afterEach, describe, expect, it } from 'vitest';
import { ConfigInvalidError, formatIssue, loadConfigDir } from '../../src/config/index.ts';
import { doc, removeDir, SERVICE_ORDERS, writeConfigDir } from '../helpers/config.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function issuesOf(files: Record<string, string>): ConfigInvalidError {
  const dir = writeConfigDir(files);
  dirs.push(dir);
  try {
    loadConfigDir(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalidError);
    return err as ConfigInvalidError;
  }
  throw new Error('expected the configuration to be rejected');
}

/** The sample Service with one key indented one space too far: YAML sees line 7's value run on (7:19). */
const BROKEN_ORDERS = SERVICE_ORDERS.replace('  serviceAccount: orders\n', '  serviceAccount: orders\n   owner: shop-team\n');
const ROUTE_TO_ORDERS = doc('Route', 'r', 'hosts: [orders]\nhttp:\n  - route:\n      - destination: { host: orders }', 'shop');
const TRAFFIC_TO_ORDERS = doc('TrafficPolicy', 't', 'host: orders', 'shop');

describe('configuration errors a person can act on', () => {
  it('lists a YAML syntax error first, with line and column', () => {
    const err = issuesOf({ 'a-route.yaml': ROUTE_TO_ORDERS, 'svc.yaml': BROKEN_ORDERS });
    const first = err.issues[0]!;
    expect(first.file).toMatch(/svc\.yaml$/);
    expect(formatIssue(first)).toMatch(/svc\.yaml:7:19: YAML syntax error: /);
  });

  it('hides errors about missing documents while a file did not parse, and says how many', () => {
    const err = issuesOf({ 'a-route.yaml': ROUTE_TO_ORDERS, 'svc.yaml': BROKEN_ORDERS, 'tp.yaml': TRAFFIC_TO_ORDERS });
    const messages = err.issues.map(formatIssue);
    expect(messages.some((m) => /Service "orders" not found|names no Service/.test(m))).toBe(false);
    const note = err.issues.find((i) => i.category === 'note');
    expect(note?.message).toMatch(/3 errors about documents not found .*not shown/);
    expect(note?.file).toMatch(/svc\.yaml$/);
    // Syntax errors, then the note, then the rest.
    expect(err.issues.findIndex((i) => i.category === 'note')).toBeGreaterThan(err.issues.findLastIndex((i) => i.category === 'syntax'));
  });

  it('keeps reporting missing documents when every file parsed', () => {
    const err = issuesOf({ 'tp.yaml': TRAFFIC_TO_ORDERS });
    expect(err.issues.map(formatIssue)).toEqual([expect.stringMatching(/tp\.yaml:7: spec\.host: Service "orders" not found$/)]);
  });

  it('keeps errors unrelated to references while a file did not parse', () => {
    const err = issuesOf({ 'svc.yaml': BROKEN_ORDERS, 'authz.yaml': doc('AuthorizationPolicy', 'p', 'action: ALLOW\nrulez: []') });
    expect(err.issues.map(formatIssue)).toContainEqual(expect.stringMatching(/authz\.yaml:8: spec\.rulez: unknown field/));
  });

  it('suggests the closest known field for an unknown one', () => {
    const err = issuesOf({ 'authz.yaml': doc('AuthorizationPolicy', 'p', 'acton: ALLOW\nrules: []') });
    expect(err.issues.map(formatIssue)).toContainEqual(expect.stringMatching(/authz\.yaml:7: spec\.acton: unknown field \(did you mean "action"\?\)$/));
  });

  it('suggests a transposed field name (Damerau distance 1)', () => {
    const err = issuesOf({ 'authz.yaml': doc('AuthorizationPolicy', 'p', 'action: ALLOW\nrlues: []') });
    expect(err.issues.map((i) => i.message)).toContain('unknown field (did you mean "rules"?)');
  });

  it('suggests nothing when no known field is within distance 2', () => {
    const err = issuesOf({ 'authz.yaml': doc('AuthorizationPolicy', 'p', 'action: ALLOW\nzzzzzz: []') });
    expect(err.issues.map((i) => i.message)).toContain('unknown field');
  });
});
