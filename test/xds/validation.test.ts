import { describe, expect, it } from 'vitest';
import { ConfigInvalidError } from '../../src/config/index.ts';
import { ordersRouting, SHOP_SERVICES, snapshotOf } from './fixtures.ts';

/** The issues a configuration is rejected with ([] when it loads). */
function issues(files: Record<string, string>): string[] {
  try {
    snapshotOf(files);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

const route = (spec: string) => `apiVersion: meshward.io/v1\nkind: Route\nmetadata: { name: r, namespace: shop }\nspec:\n${spec}`;

describe('configuration that would make Envoy reject the generated xDS is refused at validation', () => {
  it('accepts the sample routing', () => {
    expect(issues({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) })).toEqual([]);
  });

  it('refuses a regex Envoy (RE2) cannot compile: lookahead and backreferences', () => {
    const found = issues({ 's.yaml': SHOP_SERVICES, 'r.yaml': route('  hosts: [web]\n  http:\n    - match: [{ uri: { regex: "^/a(?!b)" } }, { headers: { x: { regex: "(a)\\\\1" } } }]\n      route: [{ destination: { host: web } }]') });
    expect(found).toEqual([
      'spec.http[0].match[0].uri.regex: lookaround and backreferences are not supported by Envoy (RE2 syntax)',
      'spec.http[0].match[1].headers.x.regex: lookaround and backreferences are not supported by Envoy (RE2 syntax)',
    ]);
  });

  it('refuses a second Route for the same Service', () => {
    const second = `---\napiVersion: meshward.io/v1\nkind: Route\nmetadata: { name: r2, namespace: shop }\nspec:\n  hosts: [web.shop]\n  http:\n    - route: [{ destination: { host: web } }]`;
    const found = issues({ 's.yaml': SHOP_SERVICES, 'r.yaml': `${route('  hosts: [web]\n  http:\n    - route: [{ destination: { host: web } }]')}\n${second}` });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^spec\.hosts\[0\]: Service "web\.shop" is already routed by Route shop\/r /);
  });

  it('refuses HTTP routing to a TCP-only service', () => {
    expect(issues({ 's.yaml': SHOP_SERVICES, 'r.yaml': route('  hosts: [web]\n  http:\n    - route: [{ destination: { host: db.data } }]') }))
      .toEqual(['spec.http[0].route[0].destination.host: HTTP routes need an HTTP, HTTP2 or GRPC port; Service "db.data" has only TCP ports']);
  });

  it('refuses a second TrafficPolicy for a Service', () => {
    const tp = (name: string) => `apiVersion: meshward.io/v1\nkind: TrafficPolicy\nmetadata: { name: ${name}, namespace: shop }\nspec:\n  host: web`;
    const found = issues({ 's.yaml': SHOP_SERVICES, 't.yaml': `${tp('a')}\n---\n${tp('b')}` });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^spec\.host: Service "web" already has TrafficPolicy shop\/a/);
  });

  it('refuses endpoints that are not IP addresses, duplicate or reserved ports, shared extra hosts and overlapping TCP services', () => {
    const svc = (name: string, extra: string) => `apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: ${name}, namespace: shop }\nspec:\n  serviceAccount: ${name}\n${extra}`;
    expect(issues({ 's.yaml': svc('a', '  ports: [{ name: http, port: 80 }, { name: alt, port: 80 }]\n  endpoints: [{ address: a.example.com }]') }))
      .toEqual(['spec.ports[1].port: duplicate port 80', 'spec.endpoints[0].address: endpoint address must be an IPv4 or IPv6 address (got "a.example.com")']);
    expect(issues({ 's.yaml': svc('a', '  ports: [{ name: http, port: 80, targetPort: 8080 }, { name: alt, port: 8080 }, { name: cap, port: 15006 }]') }))
      .toEqual(['spec.ports[1].port: two ports reach application port 8080', "spec.ports[2].port: port 15006 is reserved for the sidecar's traffic capture (15001 outbound, 15006 inbound)"]);
    const hosts = issues({ 's.yaml': `${svc('a', '  hosts: [shop.example.com]\n  ports: [{ name: http, port: 80 }]')}\n---\n${svc('b', '  hosts: [shop.example.com]\n  ports: [{ name: http, port: 80 }]')}` });
    expect(hosts).toEqual(['spec.hosts[0]: host "shop.example.com" is already used by Service shop/a']);
    const tcp = issues({ 's.yaml': `${svc('a', '  ports: [{ name: pg, port: 5432, protocol: TCP }]\n  endpoints: [{ address: 10.1.1.1 }]')}\n---\n${svc('b', '  ports: [{ name: pg, port: 5432, protocol: TCP }]\n  endpoints: [{ address: 10.1.1.1 }]')}` });
    expect(tcp).toEqual(['spec.ports[0].port: TCP port 5432 at 10.1.1.1 is also served by Service shop/a']);
  });
});
