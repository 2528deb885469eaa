/**
 * The xDS control plane capability: ADS (SotW and Delta) on the shared gRPC server, resources
 * generated from the configuration snapshot, debounced pushes, and `GET /v1/proxies`.
 *
 * @example
 * // src/capabilities.ts
 * import { createXdsCapability } from './xds/index.ts';
 * export const CAPABILITIES = [createCaCapability, ..., createXdsCapability];
 */
import { parseDuration } from '../config/index.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import { DEFAULT_DEBOUNCE, type DebounceOptions } from './debounce.ts';
import { proxiesRoutes } from './http.ts';
import type { WorkloadAuthenticator } from './identity.ts';
import type { SecretProvider } from './secrets.ts';
import { XdsServer } from './server.ts';

export { XdsServer, ADS_SERVICE, type XdsServerOptions } from './server.ts';
export { generateResources, compileModel, type GeneratedResources, type ProxyTarget } from './generate/index.ts';
export { buildSnapshot, type EncodedResource, type XdsSnapshot } from './resources.ts';
export { renderBootstrap, type BootstrapOptions } from './bootstrap.ts';
export { renderGrpcBootstrap, type GrpcBootstrap, type GrpcBootstrapOptions } from './grpc-bootstrap.ts';
export { TYPE_URLS, PUSH_ORDER, type ResourceKind } from './type-urls.ts';
export type { WorkloadAuthenticator, WorkloadIdentity } from './identity.ts';
export type { SecretProvider } from './secrets.ts';
export type { ProxyStatusV1, TypeStatusV1 } from './status.ts';
export type { ProxiesResponseV1 } from './http.ts';
export { DEFAULT_DEBOUNCE, type DebounceOptions } from './debounce.ts';
export * from './errors.ts';

export interface XdsCapability extends Capability {
  readonly name: 'xds';
  readonly server: XdsServer;
  /** The configuration version served to proxies (xDS version_info, `GET /v1/proxies`). */
  version(): string;
  /** Ends every ADS stream (UNAVAILABLE) so proxies reconnect elsewhere; call before the gRPC server shuts down. */
  drain(): void;
}

export interface XdsCapabilityOverrides {
  debounce?: DebounceOptions;
  /** Replaces the CA's authenticator (tests). */
  authenticator?: WorkloadAuthenticator;
  /** Replaces the CA as the source of certificates (tests). */
  secrets?: SecretProvider;
}

/** Debounce from MESHWARD_XDS_DEBOUNCE_QUIET / MESHWARD_XDS_DEBOUNCE_MAX (durations), else 100ms / 1s. */
export function debounceFromEnv(env: Readonly<Record<string, string | undefined>>): DebounceOptions {
  const quiet = env.MESHWARD_XDS_DEBOUNCE_QUIET;
  const max = env.MESHWARD_XDS_DEBOUNCE_MAX;
  return {
    quietMs: quiet ? parseDuration(quiet) : DEFAULT_DEBOUNCE.quietMs,
    maxMs: max ? parseDuration(max) : Math.max(DEFAULT_DEBOUNCE.maxMs, quiet ? parseDuration(quiet) : 0),
  };
}

export function createXdsCapability(ctx: CapabilityContext, overrides: XdsCapabilityOverrides = {}): XdsCapability {
  const server = new XdsServer({
    config: ctx.config,
    // The CA capability (src/identity) authenticates workloads for SDS; ADS nodes are proven the same way.
    authenticator: () => overrides.authenticator ?? (ctx.find('ca') as (Capability & { authenticator?: WorkloadAuthenticator }) | undefined)?.authenticator,
    // The CA capability also hands out each workload's SVID and the trust bundle: served as SDS over ADS.
    // Not with Mesh.spec.identity.serverKeys: false: keys then come from the agent next to the proxy, never from here.
    secrets: () => overrides.secrets ?? (ctx.config.current().mesh.identity.serverKeys === false ? undefined : ctx.find('ca') as (Capability & SecretProvider) | undefined),
    logger: ctx.logger.child({ component: 'xds' }),
    registry: ctx.registry,
    clock: ctx.clock,
    debounce: overrides.debounce ?? debounceFromEnv(process.env),
  });
  let unsubscribe: (() => void) | undefined;
  return {
    name: 'xds',
    server,
    version: () => server.version,
    drain: () => server.close(),
    registerGrpc: (grpc) => server.register(grpc),
    registerHttp: (app) => proxiesRoutes(app, { auth: ctx.apiAuth, status: () => ({ version: server.version, proxies: server.proxies() }), configOf: (nodeId) => server.configOf(nodeId) }),
    async start() {
      unsubscribe = ctx.config.subscribe(() => server.configChanged());
    },
    async stop() {
      unsubscribe?.();
      server.close();
    },
  };
}
