/** A finished check → the audit record (DecisionRecordV1). Pure. */
import type { DecisionOutcome, DecisionRecordV1 } from '../audit/record.ts';
import type { ConfigSnapshot } from '../config/index.ts';
import { type Decision, httpStatusOf } from './decision.ts';
import type { AuthzInput, RequestFacts } from './input.ts';
import type { CheckContext } from './stage.ts';

export interface RecordParts {
  decisionId: string;
  time: number;
  snapshot: ConfigSnapshot;
  input: AuthzInput;
  facts: RequestFacts;
  destination: string;
  latencyUs: number;
}

function base(p: RecordParts, decision: DecisionOutcome, reason: string, status: number): DecisionRecordV1 {
  const r: DecisionRecordV1 = {
    decisionId: p.decisionId,
    time: p.time,
    decision,
    reason,
    status,
    matchedPolicies: [],
    configVersion: p.snapshot.version,
    destination: p.destination,
    method: p.facts.method,
    host: p.facts.host,
    path: p.facts.path,
    latencyUs: p.latencyUs,
    // The audit store masks `authorization`, cookies and configured paths before storing.
    input: p.input,
  };
  const source = p.input.attributes.source?.principal;
  if (source) r.sourcePrincipal = source;
  if (p.facts.requestId) r.requestId = p.facts.requestId;
  return r;
}

export function decisionRecord(ctx: CheckContext, decision: Decision, p: { decisionId: string; time: number; latencyUs: number }): DecisionRecordV1 {
  const r = base({ decisionId: p.decisionId, time: p.time, latencyUs: p.latencyUs, input: ctx.input, facts: ctx.request, destination: ctx.workload.display, snapshot: ctx.snapshot }, decision.outcome, decision.reason, httpStatusOf(decision));
  r.matchedPolicies = ctx.matchedPolicies;
  const bundles = bundleRevisions(ctx);
  if (bundles) r.bundles = bundles;
  if (ctx.auth) r.requestPrincipal = ctx.auth.principal;
  if (decision.outcome === 'rate_limited') r.limit = decision.limit;
  return r;
}

/** `{ name: { revision } }` of the OPA bundles the matched policies came from (OPA's decision log field). */
function bundleRevisions(ctx: CheckContext): DecisionRecordV1['bundles'] {
  let out: DecisionRecordV1['bundles'];
  for (const m of ctx.matchedPolicies) if (m.bundle) (out ??= {})[m.bundle.name] = { revision: m.bundle.revision };
  return out;
}

/** The record of a check that failed internally (Envoy got a gRPC error; its failure mode decided). */
export function errorRecord(p: RecordParts, reason: string): DecisionRecordV1 {
  const { failureMode, statusOnError } = p.snapshot.mesh.extAuthz;
  // What the Envoy config meshward generates does with a failed check.
  return base(p, 'error', reason, failureMode === 'allow' ? 200 : statusOnError);
}

/** Whether to store an allowed decision when `audit.recordAllows` is off: only if a policy asked to be noticed. */
export function worthRecording(ctx: CheckContext, decision: Decision): boolean {
  if (decision.outcome !== 'allow' || ctx.snapshot.mesh.audit.recordAllows) return true;
  return ctx.matchedPolicies.some((m) => m.dryRun || m.effect === 'audit');
}
