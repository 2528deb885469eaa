/**
 * SDS: Envoy's Secret Discovery Service backed by the `ca` capability. Serves `default` (the
 * caller's certificate and key), `ROOTCA` (the trust bundle), and the same under the caller's
 * SPIFFE ID and its trust domain ID, as SPIRE's agent does.
 */
import type { CaCapability } from '../ca/index.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import { createSdsService, type SdsService } from './service.ts';

export { createSdsService, SDS_SERVICE, type SdsService, type SdsServiceDeps } from './service.ts';
export { DEFAULT_SECRET, ROOTCA_SECRET, classifyName } from './names.ts';
export { SECRET_TYPE_URL } from './secrets.ts';
export type { SecretSource } from './source.ts';

export interface SdsCapability extends Capability {
  readonly name: 'sds';
  readonly service: SdsService;
}

export function createSdsCapability(ctx: CapabilityContext): SdsCapability {
  const ca = ctx.get<CaCapability>('ca');
  const service = createSdsService({ source: ca, logger: ctx.logger.child({ component: 'sds' }), registry: ctx.registry });
  return {
    name: 'sds',
    service,
    registerGrpc: (server) => service.register(server),
    async stop() {
      service.close();
    },
  };
}
