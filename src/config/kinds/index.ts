/** The registry of configuration kinds. Adding a kind is one file plus one line here. */
import { authorizationPolicyKind } from './authorization-policy.ts';
import { meshKind } from './mesh.ts';
import { quotaPolicyKind } from './quota-policy.ts';
import { rateLimitPolicyKind } from './rate-limit-policy.ts';
import { regoPolicyKind } from './rego-policy.ts';
import { requestAuthenticationKind } from './request-authentication.ts';
import { routeKind } from './route.ts';
import { serviceKind } from './service.ts';
import { trafficPolicyKind } from './traffic-policy.ts';
import type { KindDefinition } from './types.ts';

export const KINDS: ReadonlyMap<string, KindDefinition> = new Map(
  [meshKind, serviceKind, routeKind, trafficPolicyKind, authorizationPolicyKind, requestAuthenticationKind, regoPolicyKind, rateLimitPolicyKind, quotaPolicyKind]
    .map((k) => [k.kind, k as KindDefinition]),
);

export type { KindDefinition, KindIssue, CheckContext } from './types.ts';
export * from './mesh.ts';
export * from './service.ts';
export * from './route.ts';
export * from './traffic-policy.ts';
export * from './authorization-policy.ts';
export * from './request-authentication.ts';
export * from './rego-policy.ts';
export * from './rate-limit-policy.ts';
export * from './quota-policy.ts';
