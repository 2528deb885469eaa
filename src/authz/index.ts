/**
 * The `authz` capability: Envoy ext_authz (`envoy.service.auth.v3.Authorization`) on the shared
 * gRPC server, deciding with a pipeline of stages compiled once per config snapshot.
 *
 * @example Wiring (capabilities.ts lists it after `audit`, so decisions are recorded):
 * ```ts
 * const authz = ctx.get<AuthzCapability>('authz');
 * authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON })); // Rego / CUSTOM providers
 * authz.addStage({ name: 'limits', compile: compileLimits }, { after: 'authorize' });
 * ```
 */
export { type AuthzCapability, createAuthzCapability } from './capability.ts';
export type { Decision, Mutations, HeaderMutation } from './decision.ts';
export type { AuthzInput, CheckRequestJson, RequestFacts } from './input.ts';
export type { CheckContext, RequestAuth, Stage, StageFactory, StagePlacement, StageRegistry, StageResult, Workload } from './stage.ts';
export type { AuditSink, CheckResult } from './server.ts';
export { AUTHORIZATION_SERVICE, authorizationServiceDefinition } from './proto.ts';
export * from './errors.ts';
