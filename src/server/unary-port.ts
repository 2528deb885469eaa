/**
 * The dedicated unary gRPC port (`--unary-grpc-addr`): ext_authz Check, the Istio CA's
 * CreateCertificate and gRPC health, on meshward's own HTTP/2 server (src/lib/h2/), with the
 * gRPC port's TLS pair and limits. Point Envoy's ext_authz cluster (and agents' CSRs) at it;
 * SDS, ADS and everything else stays on the gRPC port.
 */
import { status as GrpcStatus, type MethodDefinition } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import type { UnaryRoute } from '../lib/grpc-unary-stream.ts';
import { createUnaryServer, type UnaryServer } from '../lib/h2/server.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, sampledGauge, type Registry } from '../lib/metrics.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';
import type { ConnectionRefusals } from './connection-cap.ts';
import type { TlsFilesWatcher } from './tls-files.ts';

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

export interface UnaryPortOptions {
  host: string;
  port: number;
  routes: ReadonlyMap<string, UnaryRoute>;
  /** Health answers SERVING for the server as a whole ('') while this says so. */
  serving(): boolean;
  tls?: TlsFilesWatcher;
  maxConcurrentStreams: number;
  idleTimeoutMs: number;
  maxConnections: number;
  /** Where refused connections are counted and logged (shared with the gRPC port's). */
  refusals: ConnectionRefusals;
  registry: Registry;
  logger: Logger;
}

export interface UnaryPort {
  /** host:port as bound. */
  readonly address: string;
  readonly paths: readonly string[];
  close(): Promise<void>;
}

export async function startUnaryPort(o: UnaryPortOptions): Promise<UnaryPort> {
  const routes = new Map(o.routes);
  routes.set(HEALTH_CHECK_PATH, healthRoute(o.serving));
  const connectionErrors = counter(o.registry, 'meshward_unary_grpc_connection_errors_total', 'Connections on the unary gRPC port closed with a GOAWAY error, by HTTP/2 error code.', ['code']);
  const streamErrors = counter(o.registry, 'meshward_unary_grpc_stream_errors_total', 'Streams on the unary gRPC port refused or reset by meshward, by HTTP/2 error code or HTTP status.', ['code']);
  const protocolLog = new RateLimitedLog(o.logger, 'unary gRPC connections closed for protocol errors');
  const alpnLog = new RateLimitedLog(o.logger, 'unary gRPC connections refused: TLS without ALPN h2');
  const pair = o.tls?.current();
  const server: UnaryServer = createUnaryServer({
    routes,
    limits: { maxConcurrentStreams: o.maxConcurrentStreams, idleTimeoutMs: o.idleTimeoutMs },
    maxConnections: o.maxConnections,
    ...(pair ? { tls: { cert: pair.cert, key: pair.key } } : {}),
    observer: {
      connectionError(code, reason) {
        connectionErrors.inc({ code });
        protocolLog.note({ code, reason });
      },
      streamError(code) {
        streamErrors.inc({ code });
      },
      connectionRefused: (remoteAddress) => o.refusals.refused(remoteAddress),
      alpnRefused(protocol) {
        connectionErrors.inc({ code: 'ALPN' });
        alpnLog.note({ protocol: protocol || 'none' });
      },
    },
  });
  const stopWatching = o.tls?.onChange((p) => server.setSecureContext({ cert: p.cert, key: p.key }));
  const port = await server.listen(o.host, o.port);
  sampledGauge(o.registry, 'meshward_unary_grpc_connections', 'Open connections on the unary gRPC port.', () => server.connectionCount());
  return {
    address: `${o.host}:${port}`,
    paths: [...routes.keys()],
    async close() {
      stopWatching?.();
      await server.close();
      protocolLog.close();
      alpnLog.close();
    },
  };
}

type HealthStatus = 'SERVING' | 'NOT_SERVING';
const HEALTH_CHECK = healthService.Check as MethodDefinition<{ service?: string }, { status: HealthStatus }>;

/**
 * grpc.health.v1.Health/Check for the whole server (service ""), with grpc-health-check's own
 * messages and its answers (NOT_FOUND for another service).
 */
function healthRoute(serving: () => boolean): UnaryRoute {
  return {
    method: {
      deserialize: HEALTH_CHECK.requestDeserialize,
      serialize: HEALTH_CHECK.responseSerialize,
      handle: (request: { service?: string }) => {
        if ((request.service ?? '') !== '') throw new UnknownHealthService();
        return { status: serving() ? 'SERVING' : 'NOT_SERVING' };
      },
      failure: (err: unknown) => (err instanceof UnknownHealthService ? { code: GrpcStatus.NOT_FOUND, message: err.message } : { code: GrpcStatus.INTERNAL, message: err instanceof Error ? err.message : String(err) }),
    },
  };
}

class UnknownHealthService extends Error {
  constructor() {
    super('Health status unknown for service');
  }
}
