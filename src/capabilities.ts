/**
 * The capabilities `meshward serve` runs, in build order (a capability may `ctx.get` any listed
 * before it). Adding a capability is one import and one line here.
 */
import { createAuditCapability } from './audit/index.ts';
import { createLimitsCapability } from './limits/index.ts';
import type { CapabilityFactory } from './server/capability.ts';

export const CAPABILITIES: readonly CapabilityFactory[] = [
  // audit first: authz appends decisions to it.
  createAuditCapability,
  // limits plugs its stage into authz: keep it after authz.
  createLimitsCapability,
];
