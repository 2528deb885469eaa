/** Wires the agent: identity from meshward, SDS on a Unix socket, health, optional files. */
import { Server } from '@grpc/grpc-js';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { createRegistry, type Registry } from '../lib/metrics.ts';
import { writeSvidFiles } from './files.ts';
import { type HealthServer, startHealthServer } from './health.ts';
import { AgentIdentity, type AgentIdentityOptions } from './identity.ts';
import { createAgentSdsService } from './sds.ts';
import { bindUnixSocket } from './socket.ts';
import { Upstream, type UpstreamOptions } from './upstream.ts';
import { RAW_ADS_DEFINITION, XdsProxy } from './xds-proxy.ts';
import { startWorkloadApi, type WorkloadApiServer } from './workload-api/index.ts';

export interface AgentOptions extends UpstreamOptions {
  /** Unix socket for Envoy SDS; not served when absent. */
  sdsSocket?: string;
  /** SPIFFE Workload API socket (`unix:///path` or a path); not served when absent. */
  workloadSocket?: string;
  /** Unix socket for Envoy's ADS, forwarded to meshward with the current token; not served when absent. */
  xdsSocket?: string;
  /** 0o600 (default) or 0o660 (every socket). */
  socketMode?: number;
  /** host:port of /healthz and /metrics; not served when absent. */
  healthAddress?: string;
  /** Writes svid.pem, svid_key.pem, bundle.pem here on every change. */
  svidDir?: string;
  logger: Logger;
  registry?: Registry;
  clock?: Clock;
  identity?: Partial<Pick<AgentIdentityOptions, 'random' | 'renewRatio' | 'renewJitter' | 'backoffInitialMs' | 'backoffMaxMs' | 'bundleRefreshMs'>>;
}

export interface Agent {
  readonly identity: AgentIdentity;
  readonly registry: Registry;
  /** host:port of the health server, when started. */
  readonly healthAddress?: string;
  stop(): Promise<void>;
}

export async function startAgent(o: AgentOptions): Promise<Agent> {
  const registry = o.registry ?? createRegistry();
  const upstream = new Upstream(o);
  const identity = new AgentIdentity({ upstream, logger: o.logger, registry, ...(o.clock ? { clock: o.clock } : {}), ...o.identity });
  const unsubscribe = o.svidDir ? identity.subscribe((svid) => writeFiles(o, svid)) : undefined;
  let grpc: Server | undefined;
  let removeSocket: (() => void) | undefined;
  let sds: ReturnType<typeof createAgentSdsService> | undefined;
  let health: HealthServer | undefined;
  let workloadApi: WorkloadApiServer | undefined;
  let xds: { server: Server; proxy: XdsProxy; remove: () => void } | undefined;
  try {
    if (o.sdsSocket) {
      grpc = new Server();
      sds = createAgentSdsService(identity, { logger: o.logger.child({ component: 'agent-sds' }), registry });
      sds.register(grpc);
      removeSocket = (await bindUnixSocket(grpc, o.sdsSocket, o.socketMode ?? 0o600, 'SDS socket')).release;
    }
    if (o.workloadSocket) {
      workloadApi = await startWorkloadApi({ socketPath: o.workloadSocket, source: identity, logger: o.logger.child({ component: 'workload-api' }), registry, socketMode: o.socketMode ?? 0o600 });
    }
    if (o.xdsSocket) {
      const server = new Server();
      const proxy = new XdsProxy({ upstream, grpcAddress: o.grpcAddress, ...(o.caPem ? { caPem: o.caPem } : {}), logger: o.logger.child({ component: 'agent-xds' }) });
      server.addService(RAW_ADS_DEFINITION, proxy.handlers());
      xds = { server, proxy, remove: (await bindUnixSocket(server, o.xdsSocket, o.socketMode ?? 0o600, 'xDS proxy socket')).release };
    }
    if (o.healthAddress) health = await startHealthServer(o.healthAddress, () => identity.health(), registry);
  } catch (err) {
    grpc?.forceShutdown();
    removeSocket?.();
    await workloadApi?.close();
    xds?.server.forceShutdown();
    xds?.remove();
    upstream.close();
    throw err;
  }
  identity.start();
  return {
    identity,
    registry,
    ...(health ? { healthAddress: health.address } : {}),
    async stop() {
      unsubscribe?.();
      identity.stop();
      sds?.close();
      if (grpc) await new Promise<void>((resolve) => grpc!.tryShutdown(() => resolve()));
      removeSocket?.();
      await workloadApi?.close();
      if (xds) {
        xds.proxy.close();
        await new Promise<void>((resolve) => xds!.server.tryShutdown(() => resolve()));
        xds.remove();
      }
      await health?.close();
      upstream.close();
    },
  };
}

function writeFiles(o: AgentOptions, svid: Parameters<typeof writeSvidFiles>[1]): void {
  try {
    writeSvidFiles(o.svidDir!, svid);
  } catch (err) {
    o.logger.error({ err: (err as Error).message, dir: o.svidDir }, 'writing the SVID files failed');
  }
}
