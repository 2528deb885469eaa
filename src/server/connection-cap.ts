/**
 * The cap on open connections per gRPC port (`--grpc-max-connections`). The per-connection limits
 * (streams, buffered request bytes, idle timeout) bound what one client costs; this bounds how
 * many such clients a replica holds at once, as Envoy's overload manager does with
 * `global_downstream_max_connections`, enforced by lib/connection-limit.ts: a connection past the
 * cap is closed the moment it is accepted, before any TLS or HTTP/2 byte, and counted here. Envoy treats the closed connection as a failed call
 * and connects again; that sidecar's ext_authz `failure_mode_allow` and the agent's retry decide
 * what its requests see meanwhile.
 */
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { limitConnections } from '../lib/connection-limit.ts';
import { http2ServersOf } from '../lib/grpc-stream-router.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, sampledGauge, type Registry } from '../lib/metrics.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';

export const DEFAULT_GRPC_MAX_CONNECTIONS = 10_000;

export type GrpcPortName = 'grpc' | 'unary';

/** What a refusal reports; the metric and the log line are shared by the servers of one port. */
export interface ConnectionRefusals {
  refused(remoteAddress: string | undefined): void;
  close(): void;
}

export function connectionRefusals(port: GrpcPortName, max: number, registry: Registry, logger: Logger): ConnectionRefusals {
  const refusedTotal = counter(registry, 'meshward_grpc_connections_refused_total', 'Connections closed when accepted because the port already held --grpc-max-connections, by port (grpc, unary).', ['port']);
  const log = new RateLimitedLog(logger, 'gRPC connections refused: the port holds --grpc-max-connections already');
  return {
    refused(remoteAddress) {
      refusedTotal.inc({ port });
      log.note({ port, maxConnections: max, remoteAddress });
    },
    close: () => log.close(),
  };
}

/**
 * Caps every HTTP/2 server grpc-js listens with (after `bindAsync`), and counts their open
 * connections in `meshward_grpc_connections`. Returns how many servers are capped: 0 when
 * grpc-js's internals are not the expected shape (lib/grpc-stream-router.ts), and then nothing
 * is capped.
 */
export function capGrpcPort(grpc: GrpcServer, max: number, refusals: ConnectionRefusals, registry: Registry): number {
  const servers = (http2ServersOf(grpc) ?? []) as unknown as NetServer[];
  let open = 0;
  sampledGauge(registry, 'meshward_grpc_connections', 'Open connections on the gRPC port.', () => open);
  const closed = () => open--;
  for (const server of servers) {
    limitConnections(server, max, (address) => refusals.refused(address));
    server.on('connection', (socket: Socket) => {
      open++;
      socket.once('close', closed);
    });
  }
  return servers.length;
}
