/** `AuthorizationPolicy`: Istio AuthorizationPolicy semantics (see README "Policy reference"). */
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Opt, StringList, WorkloadSelector } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';
import { ipBlocks, parsePattern } from '../../policy/yaml/strings.ts';

const list = () => Opt(StringList());

export const Source = Obj({
  principals: list(), notPrincipals: list(),
  requestPrincipals: list(), notRequestPrincipals: list(),
  namespaces: list(), notNamespaces: list(),
  ipBlocks: list(), notIpBlocks: list(),
  remoteIpBlocks: list(), notRemoteIpBlocks: list(),
});

export const Operation = Obj({
  hosts: list(), notHosts: list(),
  ports: list(), notPorts: list(),
  methods: list(), notMethods: list(),
  paths: list(), notPaths: list(),
});

export const Condition = Obj({ key: Type.String({ minLength: 1 }), values: list(), notValues: list() });

export const Rule = Obj({
  from: Opt(Type.Array(Obj({ source: Source }))),
  to: Opt(Type.Array(Obj({ operation: Operation }))),
  when: Opt(Type.Array(Condition)),
});

export const AuthorizationPolicySpec = Obj({
  selector: Opt(WorkloadSelector),
  action: Type.Union([Type.Literal('ALLOW'), Type.Literal('DENY'), Type.Literal('AUDIT'), Type.Literal('CUSTOM')], { default: 'ALLOW' }),
  /** For CUSTOM: the RegoPolicy (by name, same namespace) that decides. */
  provider: Opt(Obj({ name: Type.String({ minLength: 1 }) })),
  rules: Opt(Type.Array(Rule)),
  /** Evaluate and log, never enforce (Istio's `istio.io/dry-run` annotation). */
  dryRun: Type.Boolean({ default: false }),
  /** Only for requests whose ext_authz `context_extensions` contain all these pairs (per-route selection). */
  contextExtensions: Opt(Type.Record(Type.String({ minLength: 1 }), Type.String())),
});

export type AuthorizationPolicySpec = Static<typeof AuthorizationPolicySpec>;
export type AuthorizationRule = Static<typeof Rule>;

/** `when` keys meshward understands; anything else is an error (Istio ignores them silently). */
export const CONDITION_KEYS = [
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal',
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
  'destination.ip', 'destination.port', 'connection.sni', 'request.method', 'request.path', 'request.host',
];
const BRACKETED_KEY = /^(request\.headers|request\.auth\.claims|experimental\.envoy\.filters\.network\.mysql_proxy)(\[[^\][]+\])+$/;

export function isKnownConditionKey(key: string): boolean {
  if (CONDITION_KEYS.includes(key)) return true;
  const m = BRACKETED_KEY.exec(key);
  if (!m) return false;
  return m[1] === 'request.auth.claims' || /^request\.headers\[[^\][]+\]$/.test(key);
}

/** CIDRs and path templates that would fail to compile, reported at validation (with their path). */
function valueIssues(rule: AuthorizationRule, at: (string | number)[]): KindIssue[] {
  const issues: KindIssue[] = [];
  const tryIt = (path: (string | number)[], fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      issues.push({ path, message: (e as Error).message });
    }
  };
  (rule.from ?? []).forEach(({ source }, i) => {
    for (const f of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
      const values = source[f];
      if (values) tryIt([...at, 'from', i, 'source', f], () => ipBlocks(values, f));
    }
  });
  (rule.to ?? []).forEach(({ operation }, i) => {
    for (const f of ['paths', 'notPaths'] as const) {
      (operation[f] ?? []).forEach((v, j) => tryIt([...at, 'to', i, 'operation', f, j], () => parsePattern(v, { templates: true })));
    }
  });
  (rule.when ?? []).forEach((c, i) => {
    if (!['source.ip', 'remote.ip', 'destination.ip'].includes(c.key)) return;
    for (const f of ['values', 'notValues'] as const) {
      const values = c[f];
      if (values) tryIt([...at, 'when', i, f], () => ipBlocks(values, c.key));
    }
  });
  return issues;
}

export const authorizationPolicyKind: KindDefinition<typeof AuthorizationPolicySpec> = {
  kind: 'AuthorizationPolicy',
  spec: AuthorizationPolicySpec,
  description: 'Istio AuthorizationPolicy: ALLOW/DENY/AUDIT/CUSTOM rules on source, operation and conditions.',
  check(doc, ctx) {
    const spec = doc.spec as AuthorizationPolicySpec;
    const issues: KindIssue[] = [];
    (spec.rules ?? []).forEach((rule, r) => {
      issues.push(...valueIssues(rule, ['spec', 'rules', r]));
      (rule.when ?? []).forEach((c, i) => {
        if (!isKnownConditionKey(c.key)) issues.push({ path: ['spec', 'rules', r, 'when', i, 'key'], message: `unknown condition key "${c.key}"` });
        if (!c.values && !c.notValues) issues.push({ path: ['spec', 'rules', r, 'when', i], message: 'one of values or notValues is required' });
      });
    });
    if (spec.action === 'CUSTOM') {
      if (!spec.provider) issues.push({ path: ['spec', 'provider'], message: 'action CUSTOM requires provider.name (a RegoPolicy)' });
      else if (!ctx.find('RegoPolicy', spec.provider.name, doc.metadata.namespace)) {
        issues.push({ path: ['spec', 'provider', 'name'], message: `RegoPolicy "${spec.provider.name}" not found in namespace ${doc.metadata.namespace}`, unresolvedReference: true });
      }
    } else if (spec.provider) {
      issues.push({ path: ['spec', 'provider'], message: 'provider is only allowed with action CUSTOM' });
    }
    return issues;
  },
};
