import type { ConfigDocument } from '../../../src/config/index.ts';
import type { AuthorizationPolicySpec } from '../../../src/config/kinds/authorization-policy.ts';
import type { MatchAuth, MatchFacts } from '../../../src/policy/yaml/index.ts';

export type PolicyInput = Partial<AuthorizationPolicySpec> & { name?: string; namespace?: string };

/** A validated AuthorizationPolicy document as the config loader would produce it. */
export function policyDoc(p: PolicyInput, i = 0): ConfigDocument<AuthorizationPolicySpec> {
  const { name = `p${i}`, namespace = 'shop', ...spec } = p;
  return {
    apiVersion: 'meshward.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace },
    spec: { action: 'ALLOW', dryRun: false, ...spec } as AuthorizationPolicySpec,
    source: { file: 'test.yaml', line: i + 1 },
  };
}

export function facts(over: Partial<MatchFacts> = {}): MatchFacts {
  return {
    method: 'GET', host: 'orders.shop.svc', path: '/api/orders', port: 8080, headers: {},
    sourcePrincipal: 'cluster.local/ns/shop/sa/web', sourceNamespace: 'shop', sourceIp: '10.1.2.3', remoteIp: '203.0.113.7',
    destinationIp: '10.9.9.9', contextExtensions: {},
    ...over,
  };
}

export function auth(over: Partial<MatchAuth> = {}): MatchAuth {
  return { principal: 'https://issuer.example/alice', audiences: ['shop'], claims: { iss: 'https://issuer.example', sub: 'alice', groups: ['admin', 'dev'], org: { team: 'payments' } }, ...over };
}
