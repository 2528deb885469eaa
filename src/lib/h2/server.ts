/**
 * The dedicated unary gRPC port: a TCP (or TLS, ALPN `h2`) server whose connections are
 * H2Connection (connection.ts) and which serves only the unary routes it is given. See
 * connection.ts for why it is not node:http2.
 */
import { createServer as createTcpServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { limitConnections } from '../connection-limit.ts';
import type { UnaryRoute } from '../grpc-unary-stream.ts';
import { DEFAULT_H2_LIMITS, H2Connection, type H2Limits, type H2Observer } from './connection.ts';

export interface UnaryServerOptions {
  routes: ReadonlyMap<string, UnaryRoute>;
  limits?: Partial<H2Limits>;
  /** Open connections held at most; one past it is closed as soon as it is accepted (net.Server maxConnections). */
  maxConnections?: number;
  /** Serve TLS with this certificate and key (ALPN must negotiate `h2`); plain TCP without. */
  tls?: SecureContextOptions;
  observer?: Partial<H2Observer> & {
    /** A TLS client that did not negotiate `h2` was refused. */
    alpnRefused?(protocol: string | false | null): void;
    /** A connection was closed when accepted: the server held `maxConnections` already. */
    connectionRefused?(remoteAddress: string | undefined): void;
  };
}

export interface UnaryServer {
  /** Binds; resolves with the port (useful with port 0). */
  listen(host: string, port: number): Promise<number>;
  /** New TLS connections use this certificate (rotation). */
  setSecureContext(options: SecureContextOptions): void;
  /** Open connections. */
  connectionCount(): number;
  /**
   * Stops accepting, sends GOAWAY on every connection, lets calls in progress finish, and closes
   * connections still open after `graceMs`.
   */
  close(graceMs?: number): Promise<void>;
}

const NO_OBSERVER: H2Observer = { connectionError() {}, streamError() {} };

export function createUnaryServer(options: UnaryServerOptions): UnaryServer {
  const limits: H2Limits = { ...DEFAULT_H2_LIMITS, ...options.limits };
  const observer: H2Observer = { ...NO_OBSERVER, ...options.observer };
  /** Each open connection, with a promise of its socket's 'close'. */
  const connections = new Map<H2Connection, Promise<void>>();
  const accept = (socket: Socket) => {
    const connection = new H2Connection(socket, options.routes, limits, observer);
    connections.set(connection, new Promise((resolve) => socket.once('close', () => {
      connections.delete(connection);
      resolve();
    })));
  };
  let server: NetServer | TlsServer;
  if (options.tls) {
    const tls = createTlsServer({ ...options.tls, ALPNProtocols: ['h2'] });
    tls.on('secureConnection', (socket: TLSSocket) => {
      // RFC 9113 §3.2: HTTP/2 over TLS is negotiated with ALPN; anything else is not for us.
      if (socket.alpnProtocol !== 'h2') {
        options.observer?.alpnRefused?.(socket.alpnProtocol);
        socket.destroy();
        return;
      }
      accept(socket);
    });
    // A failed handshake is the client's problem; it must not reach the process.
    tls.on('tlsClientError', (_err, socket) => socket.destroy());
    server = tls;
  } else {
    server = createTcpServer(accept);
  }
  server.on('error', () => {});
  if (options.maxConnections !== undefined) limitConnections(server, options.maxConnections, (address) => options.observer?.connectionRefused?.(address));

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen({ host, port }, () => {
          server.removeListener('error', onError);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    setSecureContext(context) {
      if ('setSecureContext' in server) server.setSecureContext(context);
    },
    connectionCount: () => connections.size,
    async close(graceMs = 5000) {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections.keys()) connection.shutdown();
      const force = setTimeout(() => { for (const connection of connections.keys()) connection.destroy(); }, graceMs);
      await stopped;
      // The server's 'close' can come a turn before its sockets' 'close' events.
      await Promise.all(connections.values());
      clearTimeout(force);
    },
  };
}
