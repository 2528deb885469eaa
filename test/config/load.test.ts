import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigInvalidError, loadConfigDir } from '../../src/config/index.ts';
import { doc, removeDir, SERVICE_ORDERS, writeConfigDir } from '../helpers/config.ts';

const dirs: string[] = [];
function dirWith(files: Record<string, string>): string {
  const d = writeConfigDir(files);
  dirs.push(d);
  return d;
}
afterEach(() => dirs.splice(0).forEach(removeDir));

function loadErrors(files: Record<string, string>): string[] {
  const dir = dirWith(files);
  try {
    loadConfigDir(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalidError);
    const e = err as ConfigInvalidError;
    expect(e.code).toBe('CONFIG_INVALID');
    return e.issues.map((i) => `${path.basename(i.file)}:${i.line}: ${i.path}: ${i.message}`);
  }
  throw new Error('expected the configuration to be rejected');
}

describe('loading a configuration directory', () => {
  it('accepts the sample configuration shipped in policies/', () => {
    const loaded = loadConfigDir('policies');
    const kinds = new Set(loaded.documents.map((d) => d.kind));
    for (const k of ['Mesh', 'Service', 'Route', 'TrafficPolicy', 'AuthorizationPolicy', 'RequestAuthentication', 'RegoPolicy', 'RateLimitPolicy', 'QuotaPolicy']) {
      expect(kinds.has(k), k).toBe(true);
    }
    expect(loaded.documents.filter((d) => d.kind === 'Service')).toHaveLength(3);
    expect(loaded.files.has('rego/payments.rego')).toBe(true);
  });

  it('names file, line and field of a wrongly typed field', () => {
    const errors = loadErrors({
      'authz.yaml': doc('AuthorizationPolicy', 'p', `
action: ALLOW
rules:
  - to:
      - operation:
          methods: GET
`),
    });
    expect(errors).toEqual(['authz.yaml:11: spec.rules[0].to[0].operation.methods: expected array']);
  });

  it('rejects unknown fields instead of dropping them', () => {
    const errors = loadErrors({ 'a.yaml': doc('AuthorizationPolicy', 'p', 'action: ALLOW\nrulez: []') });
    expect(errors).toEqual(['a.yaml:8: spec.rulez: unknown field (did you mean "rules"?)']);
  });

  it('rejects unknown kinds and lists the known ones', () => {
    const errors = loadErrors({ 'a.yaml': doc('VirtualService', 'v', 'hosts: [a]') });
    expect(errors[0]).toMatch(/^a\.yaml:2: kind: unknown kind "VirtualService" \(known: Mesh, Service/);
  });

  it('rejects a wrong apiVersion and a missing spec', () => {
    const errors = loadErrors({ 'a.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n' });
    expect(errors).toContain('a.yaml:1: apiVersion: expected \'meshward.io/v1\'');
    expect(errors.some((e) => e.includes('spec'))).toBe(true);
  });

  it('reports YAML syntax errors with their line', () => {
    const errors = loadErrors({ 'a.yaml': 'apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: x\n' });
    expect(errors[0]).toMatch(/^a\.yaml:\d+: : YAML syntax error/);
  });

  it('locates errors in the second document of a multi-document file', () => {
    const errors = loadErrors({
      'multi.yaml': `${SERVICE_ORDERS}---\n${doc('Service', 'bad', 'serviceAccount: x\nports: []', 'shop')}`,
    });
    expect(errors).toEqual(['multi.yaml:21: spec.ports: expected array length to be greater or equal to 1']);
  });

  it('reports every error at once, sorted by file and line', () => {
    const errors = loadErrors({
      'b.yaml': doc('Service', 's', 'serviceAccount: s\nports: [{ name: http, port: 70000 }]'),
      'a.yaml': doc('Mesh', 'm', 'trustDomain: "Bad Domain!"'),
    });
    expect(errors.map((e) => e.split(':')[0])).toEqual(['a.yaml', 'b.yaml']);
    expect(errors[1]).toContain('spec.ports[0].port');
  });

  it('rejects duplicate documents of the same kind, namespace and name', () => {
    const errors = loadErrors({ 'a.yaml': SERVICE_ORDERS, 'b.yaml': SERVICE_ORDERS });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^b\.yaml:1: metadata\.name: duplicate Service "shop\/orders" \(first defined at .*a\.yaml:1\)/);
  });

  it('applies schema defaults and the default namespace', () => {
    const loaded = loadConfigDir(dirWith({ 'a.yaml': 'apiVersion: meshward.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p }\nspec: {}\n' }));
    const [d] = loaded.documents;
    expect(d!.metadata.namespace).toBe('default');
    expect(d!.spec).toMatchObject({ action: 'ALLOW', dryRun: false });
  });

  it('reports a missing configuration directory', () => {
    expect(() => loadConfigDir('/nonexistent/meshward')).toThrow(/configuration directory not found/);
  });
});

describe('cross-references', () => {
  it('rejects a Route whose destination Service does not exist', () => {
    const errors = loadErrors({
      's.yaml': SERVICE_ORDERS,
      'r.yaml': doc('Route', 'r', 'hosts: [orders]\nhttp:\n  - route:\n      - destination: { host: missing }', 'shop'),
    });
    expect(errors).toEqual(['r.yaml:10: spec.http[0].route[0].destination.host: Service "missing" not found']);
  });

  it('accepts a Route to an existing Service in another namespace by name.namespace', () => {
    const dir = dirWith({ 's.yaml': SERVICE_ORDERS, 'r.yaml': doc('Route', 'r', 'hosts: [orders.shop]\nhttp:\n  - route:\n      - destination: { host: orders.shop }', 'web') });
    expect(loadConfigDir(dir).documents).toHaveLength(2);
  });

  it('rejects a subset that no TrafficPolicy defines and weights that do not add up to 100', () => {
    const errors = loadErrors({
      's.yaml': SERVICE_ORDERS,
      'r.yaml': doc('Route', 'r', `
hosts: [orders]
http:
  - route:
      - destination: { host: orders, subset: v2 }
        weight: 50
      - destination: { host: orders }
        weight: 20
`, 'shop'),
    });
    expect(errors).toContain('r.yaml:9: spec.http[0].route: destination weights must add up to 100 (got 70)');
    expect(errors).toContain('r.yaml:10: spec.http[0].route[0].destination.subset: subset "v2" of Service "orders" is not defined by any TrafficPolicy');
  });

  it('rejects a TrafficPolicy for a missing Service', () => {
    expect(loadErrors({ 't.yaml': doc('TrafficPolicy', 't', 'host: nope') })).toEqual(['t.yaml:7: spec.host: Service "nope" not found']);
  });

  it('rejects a RegoPolicy whose module file is missing, and accepts it once present', () => {
    const spec = 'modules: [authz.rego]';
    expect(loadErrors({ 'r.yaml': doc('RegoPolicy', 'r', spec) })).toEqual(['r.yaml:7: spec.modules[0]: module file "authz.rego" not found']);
    const loaded = loadConfigDir(dirWith({ 'r.yaml': doc('RegoPolicy', 'r', spec), 'authz.rego': 'package x\n' }));
    expect(loaded.files.get('authz.rego')?.toString()).toBe('package x\n');
  });

  it('rejects a CUSTOM AuthorizationPolicy whose provider RegoPolicy does not exist', () => {
    const errors = loadErrors({ 'a.yaml': doc('AuthorizationPolicy', 'a', 'action: CUSTOM\nprovider: { name: opa }\nrules: [{}]') });
    expect(errors).toEqual(['a.yaml:8: spec.provider.name: RegoPolicy "opa" not found in namespace default']);
  });
});

describe('route hosts', () => {
  it('rejects a Route host that names no Service, and accepts a Service extra host', () => {
    const errors = loadErrors({ 's.yaml': SERVICE_ORDERS, 'r.yaml': doc('Route', 'r', 'hosts: [ordrs]\nhttp:\n  - route:\n      - destination: { host: orders }', 'shop') });
    expect(errors).toEqual(['r.yaml:7: spec.hosts[0]: host "ordrs" names no Service (use name, name.namespace, name.namespace.svc.cluster.local or a Service\'s spec.hosts entry)']);
    const withHost = SERVICE_ORDERS.replace('serviceAccount: orders', 'serviceAccount: orders\n  hosts: [orders.example.com]');
    const dir = dirWith({ 's.yaml': withHost, 'r.yaml': doc('Route', 'r', 'hosts: [orders.example.com]\nhttp:\n  - route:\n      - destination: { host: orders }', 'shop') });
    expect(loadConfigDir(dir).documents).toHaveLength(2);
  });
});
