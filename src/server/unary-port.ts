/**
 * The dedicated unary gRPC port (`--unary-grpc-addr`): ext_authz Check, the Istio CA's
 * CreateCertificate and gRPC health, on meshward's own HTTP/2 server (src/lib/h2/), with the
 * gRPC port's TLS pair and limits. Point Envoy's ext_authz cluster (and agents' CSRs) at it;
 * SDS, ADS and everything else stays on the gRPC port.
 */
import type { UnaryRoute } from '../lib/grpc-unary-stream.ts';
import { createUnaryServer, type UnaryServer } from '../lib/h2/server.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, Gauge, type Registry } from '../lib/metrics.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';
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
    ...(pair ? { tls: { cert: pair.cert, key: pair.key } } : {}),
    observer: {
      connectionError(code, reason) {
        connectionErrors.inc({ code });
        protocolLog.note({ code, reason });
      },
      streamError(code) {
        streamErrors.inc({ code });
      },
      alpnRefused(protocol) {
        connectionErrors.inc({ code: 'ALPN' });
        alpnLog.note({ protocol: protocol || 'none' });
      },
    },
  });
  const stopWatching = o.tls?.onChange((p) => server.setSecureContext({ cert: p.cert, key: p.key }));
  const port = await server.listen(o.host, o.port);
  if (!o.registry.getSingleMetric('meshward_unary_grpc_connections')) {
    new Gauge({ name: 'meshward_unary_grpc_connections', help: 'Open connections on the unary gRPC port.', registers: [o.registry], collect() { this.set(server.connectionCount()); } });
  }
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

/** grpc.health.v1.Health/Check for the whole server (service ""), as grpc-health-check answers it. */
function healthRoute(serving: () => boolean): UnaryRoute {
  return {
    method: {
      deserialize: healthServiceName,
      serialize: (status: number) => Buffer.from([0x08, status]),
      handle: (service: string) => {
        if (service !== '') throw Object.assign(new Error('Health status unknown for service'), { grpcCode: 5 });
        return serving() ? 1 : 2; // SERVING, NOT_SERVING
      },
      failure: (err: unknown) => ({ code: (err as { grpcCode?: number }).grpcCode ?? 13, message: err instanceof Error ? err.message : String(err) }),
    },
  };
}

/** HealthCheckRequest.service (field 1, a string), validated as protobuf. */
function healthServiceName(message: Buffer): string {
  let service = '';
  let at = 0;
  while (at < message.length) {
    const tag = message[at++]!;
    if (tag !== 0x0a) throw new Error(`unexpected field tag ${tag} in HealthCheckRequest`);
    let length = 0;
    let shift = 0;
    for (;;) {
      if (at >= message.length || shift > 28) throw new Error('truncated HealthCheckRequest');
      const byte = message[at++]!;
      length |= (byte & 0x7f) << shift;
      shift += 7;
      if (byte < 0x80) break;
    }
    if (at + length > message.length) throw new Error('truncated HealthCheckRequest');
    service = message.toString('utf8', at, at + length);
    at += length;
  }
  return service;
}
