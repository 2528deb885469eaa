/**
 * The SPIFFE Workload API server of `meshward agent`: grpc-js on a Unix socket whose file mode is
 * the access control (every process that can connect gets the agent's identity).
 */
import { Server, type ServerWritableStream, type ServiceDefinition, status } from '@grpc/grpc-js';
import type { Logger } from '../../lib/logger.ts';
import type { Registry } from '../../lib/metrics.ts';
import { loadMeshwardProto } from '../../lib/protos.ts';
import type { AgentIdentitySource } from '../index.ts';
import { workloadApiHandlers } from './handlers.ts';
import { JwtBundleCache } from './jwt-bundle-cache.ts';
import { JwtSvidCache } from './jwt-svid-cache.ts';
import { workloadApiMetrics } from './metrics.ts';
import { bindUnixSocket } from '../socket.ts';

let definition: ServiceDefinition | undefined;

/** `SpiffeWorkloadAPI` from proto/spiffe/workload/workload.proto (no package, as upstream). */
export function workloadApiServiceDefinition(): ServiceDefinition {
  if (!definition) {
    const loaded = loadMeshwardProto('spiffe/workload/workload.proto') as unknown as { SpiffeWorkloadAPI: { service: ServiceDefinition } };
    definition = loaded.SpiffeWorkloadAPI.service;
  }
  return definition;
}

export interface WorkloadApiOptions {
  /** `unix:///path` (the SPIFFE_ENDPOINT_SOCKET form), `unix:/path` or a path. */
  socketPath: string;
  source: AgentIdentitySource;
  logger: Logger;
  registry: Registry;
  /** File mode of the socket: 0o600 (default) admits the agent's user only, 0o660 its group too. */
  socketMode?: number;
  /** Milliseconds clock of the JWT bundle cache (tests). */
  now?: () => number;
}

export interface WorkloadApiServer {
  /** Absolute path of the socket file. */
  readonly socketPath: string;
  /** Ends open streams with UNAVAILABLE (clients reconnect), stops the server, removes the socket. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 2000;

/**
 * Starts the Workload API on a Unix socket.
 * @example const api = await startWorkloadApi({ socketPath: 'unix:///run/meshward/workload.sock', source, logger, registry });
 */
export async function startWorkloadApi(options: WorkloadApiOptions): Promise<WorkloadApiServer> {
  const streams = new Set<ServerWritableStream<unknown, unknown>>();
  const jwtBundles = new JwtBundleCache(options.source, {
    ...(options.now ? { now: options.now } : {}),
    onStale: (err) => options.logger.warn({ err: { message: (err as Error).message } }, 'Workload API: JWT bundle refresh failed; serving the last one'),
  });
  const jwtBundleUpdates = new Set<() => void>();
  const jwtSvids = new JwtSvidCache((audiences) => options.source.fetchJwtSvid(audiences), options.now ? { now: options.now } : {});
  const server = new Server();
  server.addService(workloadApiServiceDefinition(), workloadApiHandlers({
    source: options.source, logger: options.logger, metrics: workloadApiMetrics(options.registry), streams, jwtBundles, jwtBundleUpdates, jwtSvids,
  }));
  const socket = await bindUnixSocket(server, options.socketPath, options.socketMode ?? 0o600);
  // Renewals and CA rotations may change the JWT-SVID keys: expire the cache, then tell the streams.
  const unsubscribe = options.source.subscribe(() => {
    jwtBundles.invalidate();
    jwtSvids.clear();
    for (const update of [...jwtBundleUpdates]) update();
  });
  options.logger.info({ socket: socket.path, mode: (options.socketMode ?? 0o600).toString(8) }, 'SPIFFE Workload API listening');
  return {
    socketPath: socket.path,
    async close() {
      unsubscribe();
      for (const call of [...streams]) call.emit('error', { code: status.UNAVAILABLE, details: 'meshward agent is shutting down; reconnect' });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      });
      socket.release();
    },
  };
}
