/**
 * `RateLimitPolicy`: descriptors in the format of Envoy's reference rate limit service (snake_case
 * inside `descriptors`, as its YAML), plus how ext_authz derives descriptors from a request.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Opt, WorkloadSelector } from './common.ts';
import type { KindDefinition, KindIssue } from './types.ts';

/** Units as the reference service accepts them (case-insensitive there: both spellings here). */
export const RATE_LIMIT_UNITS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export const RateLimitUnit = Type.Union(RATE_LIMIT_UNITS.flatMap((u) => [Type.Literal(u), Type.Literal(u.toUpperCase())]));

/** `rate_limit` exactly as the reference service reads it (`unlimited` lives here, not on the descriptor). */
export const DescriptorRateLimit = Obj({
  unit: Opt(RateLimitUnit),
  requests_per_unit: Opt(Type.Integer({ minimum: 0, maximum: 4294967295 })),
  unlimited: Opt(Type.Boolean()),
  name: Opt(Type.String({ minLength: 1 })),
  replaces: Opt(Type.Array(Obj({ name: Type.String({ minLength: 1 }) }))),
});

export const Descriptor = Type.Recursive((Self) => Obj({
  key: Type.String({ minLength: 1 }),
  /** Absent: every distinct value gets its own counter. A trailing `*` matches by prefix. */
  value: Opt(Type.String({ minLength: 1 })),
  rate_limit: Opt(DescriptorRateLimit),
  shadow_mode: Opt(Type.Boolean()),
  detailed_metric: Opt(Type.Boolean()),
  descriptors: Opt(Type.Array(Self)),
}), { $id: 'RateLimitDescriptor' });

/** One way ext_authz turns a request into a descriptor entry (Envoy's rate limit `actions`). Exactly one field. */
export const DescriptorAction = Obj({
  sourcePrincipal: Opt(Obj({ descriptorKey: Type.String({ minLength: 1, default: 'source_principal' }) })),
  requestPrincipal: Opt(Obj({ descriptorKey: Type.String({ minLength: 1, default: 'request_principal' }) })),
  requestHeader: Opt(Obj({ headerName: Type.String({ minLength: 1 }), descriptorKey: Type.String({ minLength: 1 }), skipIfAbsent: Opt(Type.Boolean()) })),
  destinationService: Opt(Obj({ descriptorKey: Type.String({ minLength: 1, default: 'destination_service' }) })),
  genericKey: Opt(Obj({ descriptorKey: Type.String({ minLength: 1, default: 'generic_key' }), descriptorValue: Type.String({ minLength: 1 }) })),
  requestMatch: Opt(Obj({
    descriptorKey: Type.String({ minLength: 1, default: 'header_match' }),
    descriptorValue: Type.String({ minLength: 1 }),
    pathPrefix: Opt(Type.String()),
    methods: Opt(Type.Array(Type.String({ minLength: 1 }))),
    /** Envoy's `expect_match`: false inverts the match. */
    expectMatch: Type.Boolean({ default: true }),
  })),
});

export const RateLimitPolicySpec = Obj({
  domain: Type.String({ minLength: 1 }),
  algorithm: Type.Union([Type.Literal('gcra'), Type.Literal('fixed-window')], { default: 'gcra' }),
  selector: Opt(WorkloadSelector),
  descriptors: Type.Array(Descriptor, { minItems: 1 }),
  /** Each entry builds one request descriptor from its actions (all must produce a value). */
  requestDescriptors: Type.Array(Obj({ actions: Type.Array(DescriptorAction, { minItems: 1 }) }), { default: [] }),
  /** Send IETF RateLimit headers on allowed responses too. */
  responseHeaders: Type.Boolean({ default: false }),
});

export type RateLimitPolicySpec = Static<typeof RateLimitPolicySpec>;
export type RateLimitDescriptor = Static<typeof Descriptor>;

export const rateLimitPolicyKind: KindDefinition<typeof RateLimitPolicySpec> = {
  kind: 'RateLimitPolicy',
  spec: RateLimitPolicySpec,
  description: 'Rate limits: Envoy reference-service descriptors and how requests map onto them.',
  check(doc, ctx) {
    const spec = doc.spec as RateLimitPolicySpec;
    const issues = descriptorIssues(spec.descriptors, ['spec', 'descriptors']);
    spec.requestDescriptors.forEach((rd, i) => rd.actions.forEach((action, j) => {
      const set = Object.values(action).filter((v) => v !== undefined).length;
      if (set !== 1) issues.push({ path: ['spec', 'requestDescriptors', i, 'actions', j], message: `an action sets exactly one of ${Object.keys(DescriptorAction.properties).join(', ')} (found ${set})` });
    }));
    const sameDomain = ctx.documents.find((d) => d !== doc && d.kind === 'RateLimitPolicy' && (d.spec as RateLimitPolicySpec).domain === spec.domain);
    if (sameDomain) issues.push({ path: ['spec', 'domain'], message: `duplicate domain "${spec.domain}" (also in ${sameDomain.metadata.namespace}/${sameDomain.metadata.name}, ${sameDomain.source.file}:${sameDomain.source.line})` });
    return issues;
  },
};

/** The reference service's load-time checks: duplicate composite keys, unit vs unlimited, replaces. */
function descriptorIssues(descriptors: readonly RateLimitDescriptor[], at: (string | number)[]): KindIssue[] {
  const issues: KindIssue[] = [];
  const seen = new Set<string>();
  descriptors.forEach((d, i) => {
    const path = [...at, i];
    const composite = d.value === undefined ? d.key : `${d.key}_${d.value}`;
    if (seen.has(composite)) issues.push({ path, message: `duplicate descriptor composite key "${composite}"` });
    seen.add(composite);
    const rl = d.rate_limit;
    if (rl?.unlimited && (rl.unit !== undefined || rl.requests_per_unit !== undefined)) {
      issues.push({ path: [...path, 'rate_limit'], message: 'an unlimited rate_limit must not set unit or requests_per_unit' });
    }
    if (rl && !rl.unlimited && (rl.unit === undefined || rl.requests_per_unit === undefined)) {
      issues.push({ path: [...path, 'rate_limit'], message: 'rate_limit needs unit and requests_per_unit (or unlimited: true)' });
    }
    rl?.replaces?.forEach((r, j) => {
      if (r.name === rl.name) issues.push({ path: [...path, 'rate_limit', 'replaces', j], message: 'a rate_limit must not replace itself' });
    });
    if (d.value?.includes('*') && d.value.indexOf('*') !== d.value.length - 1) {
      issues.push({ path: [...path, 'value'], message: 'a wildcard "*" is only allowed at the end of a value' });
    }
    if (d.descriptors) issues.push(...descriptorIssues(d.descriptors, [...path, 'descriptors']));
  });
  return issues;
}
