/**
 * Data-driven conformance of the YAML AuthorizationPolicy engine with Istio semantics: every
 * field, its not- form and each wildcard form, with an allow and a deny case.
 */
import { describe, expect, it } from 'vitest';
import type { AuthorizationRule } from '../../../src/config/kinds/authorization-policy.ts';
import { compileAuthorizationPolicies, type MatchAuth, type MatchFacts } from '../../../src/policy/yaml/index.ts';
import { auth, facts, policyDoc } from './helpers.ts';

interface Case {
  name: string;
  rule: AuthorizationRule;
  request?: Partial<MatchFacts>;
  auth?: MatchAuth | null;
  /** Does the single ALLOW rule match (⇒ allowed)? */
  matches: boolean;
}

const web = 'cluster.local/ns/shop/sa/web';
const CASES: Case[] = [
  { name: 'principals exact', rule: { from: [{ source: { principals: [web] } }] }, matches: true },
  { name: 'principals exact, other caller', rule: { from: [{ source: { principals: ['cluster.local/ns/shop/sa/orders'] } }] }, matches: false },
  { name: 'principals prefix', rule: { from: [{ source: { principals: ['cluster.local/ns/shop/*'] } }] }, matches: true },
  { name: 'principals prefix, other namespace', rule: { from: [{ source: { principals: ['cluster.local/ns/prod/*'] } }] }, matches: false },
  { name: 'principals suffix', rule: { from: [{ source: { principals: ['*/sa/web'] } }] }, matches: true },
  { name: 'principals suffix, other account', rule: { from: [{ source: { principals: ['*/sa/admin'] } }] }, matches: false },
  { name: 'principals presence with mTLS', rule: { from: [{ source: { principals: ['*'] } }] }, matches: true },
  { name: 'principals presence without mTLS', rule: { from: [{ source: { principals: ['*'] } }] }, request: { sourcePrincipal: undefined }, matches: false },
  { name: 'notPrincipals excludes the caller', rule: { from: [{ source: { notPrincipals: [web] } }] }, matches: false },
  { name: 'notPrincipals, another caller', rule: { from: [{ source: { notPrincipals: ['cluster.local/ns/shop/sa/evil'] } }] }, matches: true },
  { name: 'requestPrincipals exact', rule: { from: [{ source: { requestPrincipals: ['https://issuer.example/alice'] } }] }, matches: true },
  { name: 'requestPrincipals, no token', rule: { from: [{ source: { requestPrincipals: ['*'] } }] }, auth: null, matches: false },
  { name: 'requestPrincipals presence with token', rule: { from: [{ source: { requestPrincipals: ['*'] } }] }, matches: true },
  { name: 'requestPrincipals issuer prefix', rule: { from: [{ source: { requestPrincipals: ['https://issuer.example/*'] } }] }, matches: true },
  { name: 'notRequestPrincipals excludes alice', rule: { from: [{ source: { notRequestPrincipals: ['*/alice'] } }] }, matches: false },
  { name: 'notRequestPrincipals, no token', rule: { from: [{ source: { notRequestPrincipals: ['*'] } }] }, auth: null, matches: true },
  { name: 'namespaces', rule: { from: [{ source: { namespaces: ['shop'] } }] }, matches: true },
  { name: 'namespaces, other', rule: { from: [{ source: { namespaces: ['prod'] } }] }, matches: false },
  { name: 'notNamespaces', rule: { from: [{ source: { notNamespaces: ['shop'] } }] }, matches: false },
  { name: 'notNamespaces, other', rule: { from: [{ source: { notNamespaces: ['prod'] } }] }, matches: true },
  { name: 'ipBlocks CIDR', rule: { from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }, matches: true },
  { name: 'ipBlocks single address, other', rule: { from: [{ source: { ipBlocks: ['10.1.2.4'] } }] }, matches: false },
  { name: 'ipBlocks IPv6', rule: { from: [{ source: { ipBlocks: ['2001:db8::/32'] } }] }, request: { sourceIp: '2001:db8::1' }, matches: true },
  { name: 'notIpBlocks', rule: { from: [{ source: { notIpBlocks: ['10.1.0.0/16'] } }] }, matches: false },
  { name: 'remoteIpBlocks', rule: { from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'] } }] }, matches: true },
  { name: 'remoteIpBlocks, other', rule: { from: [{ source: { remoteIpBlocks: ['198.51.100.0/24'] } }] }, matches: false },
  { name: 'notRemoteIpBlocks', rule: { from: [{ source: { notRemoteIpBlocks: ['203.0.113.0/24'] } }] }, matches: false },
  { name: 'hosts exact, case-insensitive', rule: { to: [{ operation: { hosts: ['Orders.Shop.Svc'] } }] }, matches: true },
  { name: 'hosts ignore the port', rule: { to: [{ operation: { hosts: ['orders.shop.svc:8080'] } }] }, matches: true },
  { name: 'hosts suffix', rule: { to: [{ operation: { hosts: ['*.shop.svc'] } }] }, matches: true },
  { name: 'hosts, other', rule: { to: [{ operation: { hosts: ['payments.shop.svc'] } }] }, matches: false },
  { name: 'notHosts', rule: { to: [{ operation: { notHosts: ['orders.*'] } }] }, matches: false },
  { name: 'ports', rule: { to: [{ operation: { ports: ['8080'] } }] }, matches: true },
  { name: 'ports, other', rule: { to: [{ operation: { ports: ['9090'] } }] }, matches: false },
  { name: 'notPorts', rule: { to: [{ operation: { notPorts: ['8080'] } }] }, matches: false },
  { name: 'methods', rule: { to: [{ operation: { methods: ['GET', 'HEAD'] } }] }, matches: true },
  { name: 'methods, other', rule: { to: [{ operation: { methods: ['POST'] } }] }, matches: false },
  { name: 'notMethods', rule: { to: [{ operation: { notMethods: ['GET'] } }] }, matches: false },
  { name: 'notMethods, other', rule: { to: [{ operation: { notMethods: ['DELETE'] } }] }, matches: true },
  { name: 'paths exact', rule: { to: [{ operation: { paths: ['/api/orders'] } }] }, matches: true },
  { name: 'paths exact, trailing slash differs', rule: { to: [{ operation: { paths: ['/api/orders/'] } }] }, matches: false },
  { name: 'paths prefix', rule: { to: [{ operation: { paths: ['/api/*'] } }] }, matches: true },
  { name: 'paths prefix, other', rule: { to: [{ operation: { paths: ['/admin/*'] } }] }, matches: false },
  { name: 'paths prefix without a full segment', rule: { to: [{ operation: { paths: ['/api*'] } }] }, matches: true },
  { name: 'paths suffix', rule: { to: [{ operation: { paths: ['*/orders'] } }] }, matches: true },
  { name: 'paths suffix, other', rule: { to: [{ operation: { paths: ['*.json'] } }] }, matches: false },
  { name: 'paths presence', rule: { to: [{ operation: { paths: ['*'] } }] }, matches: true },
  { name: 'paths template {*}', rule: { to: [{ operation: { paths: ['/api/orders/{*}'] } }] }, request: { path: '/api/orders/42' }, matches: true },
  { name: 'paths template {*} is one segment', rule: { to: [{ operation: { paths: ['/api/orders/{*}'] } }] }, request: { path: '/api/orders/42/items' }, matches: false },
  { name: 'paths template {*} in the middle', rule: { to: [{ operation: { paths: ['/api/{*}/items'] } }] }, request: { path: '/api/42/items' }, matches: true },
  { name: 'paths template {**}', rule: { to: [{ operation: { paths: ['/api/{**}'] } }] }, request: { path: '/api/orders/42/items' }, matches: true },
  { name: 'paths template {**} needs a segment', rule: { to: [{ operation: { paths: ['/api/{**}'] } }] }, request: { path: '/api/' }, matches: false },
  { name: 'notPaths', rule: { to: [{ operation: { notPaths: ['/api/*'] } }] }, matches: false },
  { name: 'notPaths, other', rule: { to: [{ operation: { notPaths: ['/admin/*'] } }] }, matches: true },
  { name: 'fields in one operation are ANDed', rule: { to: [{ operation: { methods: ['GET'], paths: ['/admin/*'] } }] }, matches: false },
  { name: 'operations are ORed', rule: { to: [{ operation: { paths: ['/admin/*'] } }, { operation: { methods: ['GET'] } }] }, matches: true },
  { name: 'sources are ORed', rule: { from: [{ source: { namespaces: ['prod'] } }, { source: { principals: [web] } }] }, matches: true },
  { name: 'from AND to: to fails', rule: { from: [{ source: { principals: [web] } }], to: [{ operation: { methods: ['POST'] } }] }, matches: false },
  { name: 'empty rule matches everything', rule: {}, matches: true },
  { name: 'when request.headers', rule: { when: [{ key: 'request.headers[X-Tenant]', values: ['acme'] }] }, request: { headers: { 'x-tenant': 'acme' } }, matches: true },
  { name: 'when request.headers absent', rule: { when: [{ key: 'request.headers[x-tenant]', values: ['acme'] }] }, matches: false },
  { name: 'when notValues', rule: { when: [{ key: 'request.headers[x-tenant]', notValues: ['acme'] }] }, request: { headers: { 'x-tenant': 'acme' } }, matches: false },
  { name: 'when source.ip', rule: { when: [{ key: 'source.ip', values: ['10.1.0.0/16'] }] }, matches: true },
  { name: 'when remote.ip, other', rule: { when: [{ key: 'remote.ip', values: ['10.0.0.0/8'] }] }, matches: false },
  { name: 'when source.principal', rule: { when: [{ key: 'source.principal', values: [web] }] }, matches: true },
  { name: 'when source.namespace, other', rule: { when: [{ key: 'source.namespace', values: ['prod'] }] }, matches: false },
  { name: 'when request.auth.principal', rule: { when: [{ key: 'request.auth.principal', values: ['*/alice'] }] }, matches: true },
  { name: 'when request.auth.audiences', rule: { when: [{ key: 'request.auth.audiences', values: ['shop'] }] }, matches: true },
  { name: 'when request.auth.audiences, other', rule: { when: [{ key: 'request.auth.audiences', values: ['bank'] }] }, matches: false },
  { name: 'when request.auth.presenter', rule: { when: [{ key: 'request.auth.presenter', values: ['web-app'] }] }, auth: auth({ presenter: 'web-app' }), matches: true },
  { name: 'when request.auth.claims string', rule: { when: [{ key: 'request.auth.claims[sub]', values: ['alice'] }] }, matches: true },
  { name: 'when request.auth.claims array element', rule: { when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }, matches: true },
  { name: 'when request.auth.claims array, other', rule: { when: [{ key: 'request.auth.claims[groups]', values: ['ops'] }] }, matches: false },
  { name: 'when request.auth.claims nested', rule: { when: [{ key: 'request.auth.claims[org][team]', values: ['payments'] }] }, matches: true },
  { name: 'when request.auth.claims without a token', rule: { when: [{ key: 'request.auth.claims[sub]', values: ['alice'] }] }, auth: null, matches: false },
  { name: 'when destination.port', rule: { when: [{ key: 'destination.port', values: ['8080'] }] }, matches: true },
  { name: 'when destination.ip, other', rule: { when: [{ key: 'destination.ip', values: ['10.0.0.1'] }] }, matches: false },
  { name: 'when connection.sni', rule: { when: [{ key: 'connection.sni', values: ['orders.shop.svc'] }] }, request: { sni: 'orders.shop.svc' }, matches: true },
  { name: 'when connection.sni absent', rule: { when: [{ key: 'connection.sni', values: ['*'] }] }, matches: false },
  { name: 'when conditions are ANDed', rule: { when: [{ key: 'request.auth.claims[sub]', values: ['alice'] }, { key: 'destination.port', values: ['9090'] }] }, matches: false },
];

describe('AuthorizationPolicy fields (ALLOW rule matching)', () => {
  for (const c of CASES) {
    it(`${c.matches ? 'allows' : 'denies'}: ${c.name}`, () => {
      const set = compileAuthorizationPolicies([policyDoc({ rules: [c.rule] })], 'meshward-system');
      const a = c.auth === null ? undefined : (c.auth ?? auth());
      const verdict = set.evaluate({ namespace: 'shop', labels: {} }, facts(c.request), a);
      expect(verdict.allowed).toBe(c.matches);
      if (c.matches) expect(verdict.decidedBy?.policy.id).toBe('shop/p0');
    });
    it(`as DENY ${c.matches ? 'denies' : 'allows'}: ${c.name}`, () => {
      const set = compileAuthorizationPolicies([policyDoc({ action: 'DENY', rules: [c.rule] })], 'meshward-system');
      const a = c.auth === null ? undefined : (c.auth ?? auth());
      expect(set.evaluate({ namespace: 'shop', labels: {} }, facts(c.request), a).allowed).toBe(!c.matches);
    });
  }
});
