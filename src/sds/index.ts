/**
 * SDS: Envoy's Secret Discovery Service backed by the `ca` capability. Serves `default` (the
 * caller's certificate and key), `ROOTCA` (the trust bundle), and the same under the caller's
 * SPIFFE ID and its trust domain ID, as SPIRE's agent does.
 */
import type { DecisionRecordV1 } from '../audit/record.ts';
import type { CaCapability } from '../ca/index.ts';
import { newDecisionId } from '../lib/ids.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import { type CrossIdentityRequest, createSdsService, type SdsService } from './service.ts';

export { createSdsService, SDS_SERVICE, type CrossIdentityRequest, type SdsService, type SdsServiceDeps } from './service.ts';
export { DEFAULT_SECRET, ROOTCA_SECRET, classifyName } from './names.ts';
export { SECRET_TYPE_URL } from './secrets.ts';
export type { SecretSource } from './source.ts';

export interface SdsCapability extends Capability {
  readonly name: 'sds';
  readonly service: SdsService;
}

/** A refused cross-identity request as an audit record, so auditors find it next to ext_authz denials. */
export function crossIdentityRecord(event: CrossIdentityRequest, now: number, configVersion: string): DecisionRecordV1 {
  return {
    decisionId: newDecisionId(), time: now, decision: 'deny', status: 403, matchedPolicies: [], configVersion, latencyUs: 0,
    reason: `SDS: ${event.caller} asked for the secret of ${String(event.requested)}`,
    sourcePrincipal: event.caller, destination: 'meshward/sds', method: event.rpc, path: String(event.requested),
  };
}

export function createSdsCapability(ctx: CapabilityContext): SdsCapability {
  const ca = ctx.get<CaCapability>('ca');
  const service = createSdsService({
    source: ca, logger: ctx.logger.child({ component: 'sds' }), registry: ctx.registry, clock: ctx.clock,
    onCrossIdentityRequest: (event) => {
      // Looked up at event time: the audit capability may be built after this one.
      const audit = ctx.find<Capability & { append?(record: DecisionRecordV1): boolean }>('audit');
      audit?.append?.(crossIdentityRecord(event, ctx.clock.now(), ctx.config.current().version));
    },
  });
  return {
    name: 'sds',
    service,
    registerGrpc: (server) => service.register(server),
    drain: () => service.close(),
    async stop() {
      service.close();
    },
  };
}
