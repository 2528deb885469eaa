/**
 * An operator's quota adjustment as a record of the audit log, so it sits in the same hash chain
 * as the decisions it changes: the adjustment table answers "what happened to this quota", the
 * chain proves that nobody removed or edited the answer afterwards.
 */
import type { DecisionRecordV1 } from '../../audit/record.ts';
import { newDecisionId } from '../../lib/ids.ts';
import type { QuotaAdjustmentV1 } from './store.ts';

export const QUOTA_AUDIT_DESTINATION = 'meshward/quota';

export function quotaAdjustmentRecord(a: QuotaAdjustmentV1, configVersion: string): DecisionRecordV1 {
  const slash = a.policy.indexOf('/');
  return {
    decisionId: newDecisionId(), time: a.time, decision: 'allow', status: 200, configVersion, latencyUs: 0,
    reason: `quota ${a.action} on ${a.subject} (period ${a.period}) by ${a.actor} (${a.role}): used ${a.before} -> ${a.after}; reason: ${a.reason}`,
    matchedPolicies: [{ kind: 'QuotaPolicy', namespace: a.policy.slice(0, slash), name: a.policy.slice(slash + 1), action: a.action }],
    requestPrincipal: a.actor, destination: QUOTA_AUDIT_DESTINATION, method: 'POST', path: `/v1/quotas/${a.subject}`,
    input: { adjustment: a },
  };
}
