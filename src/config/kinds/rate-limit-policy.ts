/**
 * `RateLimitPolicy`: descriptors in the format of Envoy's reference rate limit service (snake_case
 * inside `descriptors`, as its YAML), plus how ext_authz derives descriptors from a request.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Obj, Opt, WorkloadSelector } from './common.ts';
import type { KindDefinition } from './types.ts';

export const RateLimitUnit = Type.Union([Type.Literal('second'), Type.Literal('minute'), Type.Literal('hour'), Type.Literal('day')]);

export const Descriptor = Type.Recursive((Self) => Obj({
  key: Type.String({ minLength: 1 }),
  value: Opt(Type.String()),
  rate_limit: Opt(Obj({
    unit: RateLimitUnit,
    requests_per_unit: Type.Integer({ minimum: 0 }),
    name: Opt(Type.String()),
    replaces: Opt(Type.Array(Obj({ name: Type.String() }))),
  })),
  unlimited: Opt(Type.Boolean()),
  shadow_mode: Opt(Type.Boolean()),
  detailed_metric: Opt(Type.Boolean()),
  descriptors: Opt(Type.Array(Self)),
}), { $id: 'RateLimitDescriptor' });

/** One way ext_authz turns a request into a descriptor entry (Envoy's rate limit `actions`). */
export const DescriptorAction = Obj({
  sourcePrincipal: Opt(Obj({ descriptorKey: Type.String({ default: 'source_principal' }) })),
  requestPrincipal: Opt(Obj({ descriptorKey: Type.String({ default: 'request_principal' }) })),
  requestHeader: Opt(Obj({ headerName: Type.String({ minLength: 1 }), descriptorKey: Type.String({ minLength: 1 }), skipIfAbsent: Opt(Type.Boolean()) })),
  destinationService: Opt(Obj({ descriptorKey: Type.String({ default: 'destination_service' }) })),
  genericKey: Opt(Obj({ descriptorKey: Type.String({ default: 'generic_key' }), descriptorValue: Type.String() })),
  requestMatch: Opt(Obj({
    descriptorKey: Type.String({ default: 'header_match' }),
    descriptorValue: Type.String(),
    pathPrefix: Opt(Type.String()),
    methods: Opt(Type.Array(Type.String())),
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
};
