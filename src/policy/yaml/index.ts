/** YAML AuthorizationPolicy engine with Istio semantics (public interface). */
export { compileAuthorizationPolicies, compileAuthorizationPoliciesSliced, AuthorizationPolicySet, type YamlPolicy, type YamlVerdict, type PolicyMatch, type DryRunReport, type WorkloadRef, type PolicyAction } from './policy-set.ts';
export type { MatchAuth, MatchFacts, Matcher } from './request.ts';
export { parsePattern, anyOf, ipBlocks } from './strings.ts';
