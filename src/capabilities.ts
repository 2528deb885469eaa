/**
 * The capabilities `meshward serve` runs, in build order (a capability may `ctx.get` any listed
 * before it). Adding a capability is one import and one line here.
 */
import { createAuditCapability } from './audit/index.ts';
import { createAuthzCapability } from './authz/index.ts';
import { createRegoPolicyEngine } from './policy/engines.ts';
import { createCaCapability } from './ca/index.ts';
import { createLimitsCapability } from './limits/index.ts';
import { createSdsCapability } from './sds/index.ts';
import type { CapabilityFactory } from './server/capability.ts';
import { createXdsCapability } from './xds/index.ts';

export const CAPABILITIES: readonly CapabilityFactory[] = [
  // ca first: sds, xds and the Istio CA API authenticate workloads with its authenticator.
  createCaCapability,
  createSdsCapability,
  // audit first: authz appends decisions to it.
  createAuditCapability,
  // ext_authz with the Rego engine (modules and OPA wasm bundles) for RegoPolicy documents.
  (ctx) => {
    const authz = createAuthzCapability(ctx);
    authz.engines.register(createRegoPolicyEngine());
    return authz;
  },
  // limits plugs its stage into authz: keep it after authz.
  createLimitsCapability,
  // xds authenticates nodes and serves certificates with ca's authenticator and SVIDs.
  (ctx) => createXdsCapability(ctx),
];
