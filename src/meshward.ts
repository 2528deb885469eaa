/**
 * The composition root: builds every capability from one ConfigStore and runs them behind one gRPC
 * server and one HTTP server. Tests create it in-process on port 0; only `start()` binds.
 */
import { mkdirSync } from 'node:fs';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { HealthImplementation } from 'grpc-health-check';
import { ApiAuth, buildApi } from './api/index.ts';
import { adminTokenWrittenSince, stampAdminToken } from './api/admin-token-notice.ts';
import { openSharedApiAuth, type SharedApiAuth } from './api/shared-tokens.ts';
import { CAPABILITIES } from './capabilities.ts';
import { ConfigStore } from './config/index.ts';
import { type Clock, systemClock } from './lib/clock.ts';
import { methodTypesOf, routeGrpcStreams } from './lib/grpc-stream-router.ts';
import { streamHandlerOf, type UnaryRoute } from './lib/grpc-unary-stream.ts';
import { createLogger, type Logger } from './lib/logger.ts';
import { createRegistry, type Registry } from './lib/metrics.ts';
import type { Capability, CapabilityContext, CapabilityFactory, ServeOptions } from './server/capability.ts';
import { routeGrpcJsLogs } from './server/grpc-log.ts';
import { capGrpcPort, connectionRefusals, DEFAULT_GRPC_MAX_CONNECTIONS } from './server/connection-cap.ts';
import { guardGrpcStreams } from './server/grpc-port-guard.ts';
import { startUnaryPort, type UnaryPort } from './server/unary-port.ts';
import { listenError } from './server/listen-errors.ts';
import { grpcServerCredentials, TlsFilesWatcher } from './server/tls-files.ts';
import { PostgresStateStore, postgresStateOptions } from './state/index.ts';

export type { ServeOptions } from './server/capability.ts';

/** Per gRPC connection; Envoy opens another connection when it needs more. */
export const DEFAULT_GRPC_MAX_CONCURRENT_STREAMS = 1000;
/** A gRPC connection with no open stream this long is closed (GOAWAY); Envoy reconnects on demand. */
export const DEFAULT_GRPC_IDLE_TIMEOUT_MS = 5 * 60_000;

export interface MeshwardDeps {
  logger?: Logger;
  registry?: Registry;
  clock?: Clock;
  /** Override the capability list (tests). */
  capabilities?: readonly CapabilityFactory[];
}

export interface Meshward {
  readonly config: ConfigStore;
  readonly http: FastifyInstance;
  readonly grpc: GrpcServer;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly apiAuth: ApiAuth;
  /** Bound addresses after start(); `unary` only with `unaryGrpcAddress`. */
  readonly addresses: { grpc: string; http: string; unary?: string };
  /** gRPC methods served on the HTTP/2 stream, past grpc-js (after start()); see grpc-stream-router.ts. */
  readonly grpcFastPaths: readonly string[];
  capability<T extends Capability>(name: string): T | undefined;
  start(): Promise<void>;
  /** Graceful: stop accepting, drain in-flight calls, stop capabilities (flush), close. */
  stop(): Promise<void>;
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new Error(`address "${address}" must be host:port`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** During a KEK rotation (previous KEKs given), which step is next (docs/ca-sds.md, "Rotating the KEK"). */
function logKekRotationStep(logger: Logger, openedWithPrevious: readonly string[]): void {
  if (openedWithPrevious.length > 0) logger.warn({ secrets: openedWithPrevious }, 'some shared secrets are still sealed under a previous KEK: once every replica has the new KEK, run `meshward state rekey`');
  else logger.info('the previous KEK opened nothing here: once `meshward state rekey` has run, remove it from every replica');
}

export async function createMeshward(options: ServeOptions, deps: MeshwardDeps = {}): Promise<Meshward> {
  const logger = deps.logger ?? createLogger();
  const registry = deps.registry ?? createRegistry({ defaultMetrics: true });
  const clock = deps.clock ?? systemClock;
  routeGrpcJsLogs(logger);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const config = new ConfigStore({ dir: options.configDir, logger, registry });
  const adminToken = stampAdminToken(options.dataDir);
  // With a database URL and a KEK, replicas share API tokens, the bootstrap key and the CA (src/state).
  const state = options.databaseUrl && options.kek
    ? await PostgresStateStore.open(postgresStateOptions({ ...options, databaseUrl: options.databaseUrl, kek: options.kek }))
    : undefined;
  let sharedAuth: SharedApiAuth | undefined;
  if (state) {
    logger.info({ store: state.location }, 'shared state (CA, bootstrap-token key, API tokens, certificate records) in PostgreSQL');
    sharedAuth = await openSharedApiAuth({ dataDir: options.dataDir, store: state, logger, ...(process.env.MESHWARD_ADMIN_TOKEN ? { env: process.env.MESHWARD_ADMIN_TOKEN } : {}) });
  }
  // Tokens apply without a restart: the file (or the shared store) is re-read when it changes.
  const apiAuth = sharedAuth?.auth ?? ApiAuth.fromDataDir(options.dataDir, { watch: true, onReloadError: (err) => logger.warn({ err }, 'cannot read the API tokens file; keeping the tokens loaded before') });
  const adminTokenFile = adminTokenWrittenSince(adminToken);
  if (adminTokenFile) logger.info({ adminTokenFile }, `wrote an admin API token to ${adminTokenFile} (mode 0600): send it as "Authorization: Bearer <its contents>"`);

  // Serving certificates are checked now (a bad pair fails startup) and re-read for rotation.
  // Checked before any capability is built, so a bad pair fails before anything is opened.
  const watchTls = (files: { certFile: string; keyFile: string; caFile?: string }, label: string) =>
    new TlsFilesWatcher(files, { label, logger, clock, registry, ...(options.tlsRefreshIntervalMs ? { refreshIntervalMs: options.tlsRefreshIntervalMs } : {}) });
  const grpcTls = options.grpcTls && watchTls(options.grpcTls, 'grpc');
  let httpTls: TlsFilesWatcher | undefined;
  try {
    httpTls = options.httpTls && watchTls({ ...options.httpTls, ...(options.httpTls.clientCaFile ? { caFile: options.httpTls.clientCaFile } : {}) }, 'http');
  } catch (err) {
    grpcTls?.close();
    throw err;
  }

  const built = new Map<string, Capability>();
  const ctx: CapabilityContext = {
    options, config, logger, registry, clock, apiAuth, ...(state ? { state } : {}),
    get<T extends Capability>(name: string): T {
      const c = built.get(name);
      if (!c) throw new Error(`capability ${name} is not built (check the order in capabilities.ts)`);
      return c as T;
    },
    find: <T extends Capability>(name: string) => built.get(name) as T | undefined,
  };
  for (const factory of deps.capabilities ?? CAPABILITIES) {
    const capability = await factory(ctx);
    built.set(capability.name, capability);
  }
  const capabilities = [...built.values()];

  // Channelz off: meshward exposes no channelz service, and its per-call bookkeeping measured
  // ≈ 3 % of the event loop under ext_authz load. Streams per connection are capped and idle
  // connections closed (grpc-port-guard.ts resets answered streams): see docs/xds.md, "Limits".
  const grpc = new GrpcServer({
    'grpc.max_concurrent_streams': options.grpcMaxConcurrentStreams ?? DEFAULT_GRPC_MAX_CONCURRENT_STREAMS,
    'grpc.max_connection_idle_ms': options.grpcIdleTimeoutMs ?? DEFAULT_GRPC_IDLE_TIMEOUT_MS,
    'grpc.enable_channelz': 0,
  });
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(grpc);
  for (const c of capabilities) c.registerGrpc?.(grpc);

  let started = false;
  const notReady = () => [...(started ? [] : ['server']), ...capabilities.filter((c) => c.ready && !c.ready()).map((c) => c.name)];
  const httpPair = httpTls?.current();
  const tls = httpPair && { cert: httpPair.cert, key: httpPair.key, ...(httpPair.ca ? { clientCa: httpPair.ca } : {}) };
  const http = await buildApi({ logger, registry, config, auth: apiAuth, notReady, metricsAuth: options.metricsAuth === true, ...(tls ? { tls } : {}) });
  httpTls?.onChange((pair) => (http.server as unknown as TlsServer).setSecureContext({ cert: pair.cert, key: pair.key, ...(pair.ca ? { ca: pair.ca } : {}) }));
  for (const c of capabilities) await c.registerHttp?.(http);

  const addresses: { grpc: string; http: string; unary?: string } = { grpc: '', http: '' };
  const maxConnections = options.grpcMaxConnections ?? DEFAULT_GRPC_MAX_CONNECTIONS;
  const refusals = { grpc: connectionRefusals('grpc', maxConnections, registry, logger), unary: connectionRefusals('unary', maxConnections, registry, logger) };
  let unaryPort: UnaryPort | undefined;
  const startUnary = async (routes: ReadonlyMap<string, UnaryRoute>) => {
    if (!options.unaryGrpcAddress) return;
    const u = splitAddress(options.unaryGrpcAddress);
    unaryPort = await startUnaryPort({
      host: u.host, port: u.port, routes, serving: () => started && !stopping,
      ...(grpcTls ? { tls: grpcTls } : {}), maxConcurrentStreams: options.grpcMaxConcurrentStreams ?? DEFAULT_GRPC_MAX_CONCURRENT_STREAMS,
      idleTimeoutMs: options.grpcIdleTimeoutMs ?? DEFAULT_GRPC_IDLE_TIMEOUT_MS, maxConnections, refusals: refusals.unary, registry, logger,
    }).catch((err: unknown) => {
      throw listenError(err, 'unary gRPC', options.unaryGrpcAddress!, '--unary-grpc-addr');
    });
    addresses.unary = unaryPort.address;
  };
  const grpcFastPaths: string[] = [];
  const routeFastPaths = (unaryRoutes: ReadonlyMap<string, UnaryRoute>) => {
    if (options.grpcFastPath === false || unaryRoutes.size === 0) return;
    const routes = new Map([...unaryRoutes].map(([path, route]) => [path, streamHandlerOf(route)] as const));
    if (routeGrpcStreams(grpc, routes) > 0) grpcFastPaths.push(...routes.keys());
    else logger.warn({ methods: [...routes.keys()] }, 'could not route these gRPC methods past grpc-js (unexpected grpc-js internals); grpc-js serves them, more slowly');
  };
  const bindAndStart = async () => {
    // Capabilities start before any port binds: ext_authz compiles its first policy set in start()
    // (a failure stops the start), so the first Check accepted is decided, and "meshward serving",
    // /readyz 200 and health SERVING come after that (docs/authz.md, "Startup and readiness").
    for (const c of capabilities) await c.start?.();
    const g = splitAddress(options.grpcAddress);
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpc.bindAsync(`${g.host.includes(':') ? `[${g.host}]` : g.host}:${g.port}`, grpcTls ? grpcServerCredentials(grpcTls) : ServerCredentials.createInsecure(), (err, port) => (err ? reject(listenError(err, 'gRPC', options.grpcAddress, '--grpc-addr')) : resolve(port))));
    addresses.grpc = `${g.host}:${grpcPort}`;
    // The capabilities' unary methods, served by both fast transports.
    const unaryRoutes = new Map(capabilities.flatMap((c) => [...(c.grpcStreamRoutes?.() ?? [])]));
    routeFastPaths(unaryRoutes);
    guardGrpcStreams(grpc, registry, { fastPaths: grpcFastPaths });
    if (!methodTypesOf(grpc)) logger.warn('could not read grpc-js\'s method types (unexpected grpc-js internals): the per-connection request budget covers the fast-path methods only');
    if (capGrpcPort(grpc, maxConnections, refusals.grpc, registry) === 0) logger.warn({ maxConnections }, 'could not cap the gRPC port\'s connections (unexpected grpc-js internals): --grpc-max-connections applies to the unary port only');
    await startUnary(unaryRoutes);
    const h = splitAddress(options.httpAddress);
    await http.listen({ host: h.host, port: h.port }).catch((err: unknown) => {
      throw listenError(err, 'HTTP', options.httpAddress, '--http-addr');
    });
    const bound = http.server.address();
    addresses.http = `${h.host}:${typeof bound === 'object' && bound ? bound.port : h.port}`;
    if (options.watchConfig) config.watch();
    started = true;
    health.setStatus('', 'SERVING');
    logger.info({ grpc: addresses.grpc, http: addresses.http, ...(unaryPort ? { unaryGrpc: unaryPort.address, unaryGrpcMethods: unaryPort.paths } : {}), grpcTls: grpcTls !== undefined, httpTls: httpTls !== undefined, grpcFastPaths, version: config.current().version }, 'meshward serving');
    if (state && options.previousKeks?.length) logKekRotationStep(logger, state.openedWithPreviousKek);
  };
  let stopping: Promise<void> | undefined;

  const meshward: Meshward = {
    config, http, grpc, logger, registry, apiAuth, addresses, grpcFastPaths,
    capability: <T extends Capability>(name: string) => built.get(name) as T | undefined,
    async start() {
      try {
        await bindAndStart();
      } catch (err) {
        // A failed start releases whatever it took (bound port, started capabilities, timers), so
        // the process can exit instead of lingering bound to half its ports.
        await meshward.stop().catch((stopErr: unknown) => logger.error({ err: stopErr }, 'cleanup after a failed start failed'));
        throw err;
      }
    },
    stop() {
      stopping ??= (async () => {
        health.setStatus('', 'NOT_SERVING');
        config.close();
        // Stop accepting first; in-flight RPCs and requests drain (bounded), then capabilities flush.
        const grpcDrained = new Promise<void>((resolve) => {
          const force = setTimeout(() => grpc.forceShutdown(), 5000);
          grpc.tryShutdown(() => { clearTimeout(force); resolve(); });
        });
        // Streams never end by themselves: close them so the drain only waits for unary calls.
        for (const c of capabilities) c.drain?.();
        await Promise.all([grpcDrained, http.close(), unaryPort?.close()]);
        grpcTls?.close();
        httpTls?.close();
        refusals.grpc.close();
        refusals.unary.close();
        for (const c of [...capabilities].reverse()) {
          try {
            await c.stop?.();
          } catch (err) {
            logger.error({ err, capability: c.name }, 'capability failed to stop cleanly');
          }
        }
        await sharedAuth?.stop();
        apiAuth.close(); // writes the last-used times gathered since the last batch
        await state?.close();
        logger.info('meshward stopped');
      })();
      return stopping;
    },
  };
  return meshward;
}
