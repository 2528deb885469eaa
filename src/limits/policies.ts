/**
 * RateLimitPolicy documents compiled once per configuration snapshot (pure): descriptor trees per
 * domain, and the request-descriptor actions ext_authz evaluates per request.
 */
import type { ConfigSnapshot } from '../config/index.ts';
import type { RateLimitPolicySpec } from '../config/kinds/rate-limit-policy.ts';
import type { LimitAlgorithm } from './backend.ts';
import { type DescriptorNode, compileDescriptors } from './descriptors.ts';

type ActionSpec = RateLimitPolicySpec['requestDescriptors'][number]['actions'][number];

/** One action, narrowed to the single field it sets. */
export type DescriptorAction =
  | { kind: 'sourcePrincipal'; key: string }
  | { kind: 'requestPrincipal'; key: string }
  | { kind: 'destinationService'; key: string }
  | { kind: 'requestHeader'; key: string; header: string; skipIfAbsent: boolean }
  | { kind: 'genericKey'; key: string; value: string }
  | { kind: 'requestMatch'; key: string; value: string; pathPrefix?: string; methods?: ReadonlySet<string>; expectMatch: boolean };

export interface CompiledRateLimitPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly domain: string;
  readonly algorithm: LimitAlgorithm;
  readonly root: DescriptorNode;
  readonly selector?: { matchLabels: Record<string, string> };
  readonly requestDescriptors: readonly (readonly DescriptorAction[])[];
  readonly responseHeaders: boolean;
}

export interface CompiledRateLimits {
  readonly version: string;
  readonly byDomain: ReadonlyMap<string, CompiledRateLimitPolicy>;
  readonly policies: readonly CompiledRateLimitPolicy[];
}

function compileAction(a: ActionSpec): DescriptorAction {
  if (a.sourcePrincipal) return { kind: 'sourcePrincipal', key: a.sourcePrincipal.descriptorKey };
  if (a.requestPrincipal) return { kind: 'requestPrincipal', key: a.requestPrincipal.descriptorKey };
  if (a.destinationService) return { kind: 'destinationService', key: a.destinationService.descriptorKey };
  if (a.requestHeader) return { kind: 'requestHeader', key: a.requestHeader.descriptorKey, header: a.requestHeader.headerName.toLowerCase(), skipIfAbsent: a.requestHeader.skipIfAbsent === true };
  if (a.genericKey) return { kind: 'genericKey', key: a.genericKey.descriptorKey, value: a.genericKey.descriptorValue };
  if (a.requestMatch) {
    const m = a.requestMatch;
    return {
      kind: 'requestMatch', key: m.descriptorKey, value: m.descriptorValue, expectMatch: m.expectMatch,
      ...(m.pathPrefix === undefined ? {} : { pathPrefix: m.pathPrefix }),
      ...(m.methods ? { methods: new Set(m.methods.map((x) => x.toUpperCase())) } : {}),
    };
  }
  // The kind check guarantees exactly one field; reaching here means the schema and this drifted.
  throw new Error('descriptor action sets no known field');
}

export function compileRateLimitPolicy(namespace: string, name: string, spec: RateLimitPolicySpec): CompiledRateLimitPolicy {
  return {
    namespace,
    name,
    domain: spec.domain,
    algorithm: spec.algorithm,
    root: compileDescriptors(spec.descriptors),
    ...(spec.selector ? { selector: spec.selector } : {}),
    requestDescriptors: spec.requestDescriptors.map((rd) => rd.actions.map(compileAction)),
    responseHeaders: spec.responseHeaders,
  };
}

export function compileRateLimits(snapshot: ConfigSnapshot): CompiledRateLimits {
  const policies = snapshot.byKind<RateLimitPolicySpec>('RateLimitPolicy')
    .map((d) => compileRateLimitPolicy(d.metadata.namespace, d.metadata.name, d.spec));
  return { version: snapshot.version, byDomain: new Map(policies.map((p) => [p.domain, p])), policies };
}
