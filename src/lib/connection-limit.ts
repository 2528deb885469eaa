/**
 * Caps a TCP (or TLS) server at `max` open connections with node's `net.Server.maxConnections`:
 * a connection past it is closed the moment it is accepted, before any byte, and the server
 * emits 'drop', reported to `refused` with the client's address.
 */
import type { Server as NetServer } from 'node:net';

export function limitConnections(server: NetServer, max: number, refused: (remoteAddress: string | undefined) => void): void {
  server.maxConnections = max;
  server.on('drop', (data?: { remoteAddress?: string }) => refused(data?.remoteAddress));
}
