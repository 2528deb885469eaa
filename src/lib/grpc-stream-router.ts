/**
 * Puts chosen gRPC methods in front of grpc-js on the same port: streams whose `:path` has a
 * route go to that route's handler (grpc-unary-stream.ts); every other stream goes to grpc-js
 * exactly as before, and connections, sessions, keepalive and shutdown stay grpc-js's.
 *
 * grpc-js has no public per-method hook below its call machinery, so this reaches its private
 * `http2Servers` map and replaces the one `stream` listener it installs on each HTTP/2 server
 * with a dispatcher that calls it for unrouted streams. When the internals are not what this
 * expects (another grpc-js version), nothing is changed and the caller falls back to the method's
 * ordinary grpc-js handler, which must stay registered: the route is a fast path, never the only
 * path. A test pins the expectation against the installed grpc-js.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { StreamHandler } from './grpc-unary-stream.ts';

const ROUTED = Symbol('meshward.grpcStreamRoutes');

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;
type RoutableServer = EventEmitter & { [ROUTED]?: true };
/** grpc-js counts a connection's open streams for its idle timeout (`grpc.max_connection_idle_ms`). */
type StreamCounting = { onStreamOpened?: (stream: ServerHttp2Stream) => void };

/** The HTTP/2 servers grpc-js listens with, if its internals are the expected shape. */
export function http2ServersOf(server: GrpcServer): RoutableServer[] | undefined {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(map instanceof Map)) return undefined;
  return [...map.keys()].filter((s): s is RoutableServer => typeof (s as EventEmitter | null)?.listeners === 'function');
}

export type GrpcMethodType = 'unary' | 'serverStream' | 'clientStream' | 'bidi';

/** The type of each method grpc-js has registered (its private `handlers`), if its internals are the expected shape. */
export function methodTypesOf(server: GrpcServer): ((path: string) => GrpcMethodType | undefined) | undefined {
  const handlers = (server as unknown as { handlers?: unknown }).handlers;
  if (!(handlers instanceof Map)) return undefined;
  return (path) => (handlers.get(path) as { type?: GrpcMethodType } | undefined)?.type;
}

/**
 * Routes `routes` (by `:path`) on every HTTP/2 server `server` is bound to. Call after
 * `bindAsync` has completed. Returns how many servers now route; 0 means grpc-js handles everything.
 */
export function routeGrpcStreams(server: GrpcServer, routes: ReadonlyMap<string, StreamHandler>): number {
  if (routes.size === 0) return 0;
  const servers = http2ServersOf(server);
  if (!servers) return 0;
  // Routed streams bypass grpc-js's handler, which counts open streams for the idle timeout:
  // count them too, or a connection busy with routed calls only would be closed as idle.
  const counting = server as unknown as StreamCounting;
  const opened = typeof counting.onStreamOpened === 'function' ? counting.onStreamOpened.bind(server) : undefined;
  let routed = 0;
  for (const h2 of servers) {
    if (h2[ROUTED]) {
      routed++;
      continue;
    }
    const listeners = h2.listeners('stream') as StreamListener[];
    if (listeners.length !== 1) continue;
    const grpcJs = listeners[0]!;
    h2.removeListener('stream', grpcJs);
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      const route = routes.get(headers[':path'] as string);
      if (route) {
        opened?.(stream);
        route(stream, headers);
      } else grpcJs(stream, headers, flags, rawHeaders);
    });
    h2[ROUTED] = true;
    routed++;
  }
  return routed;
}
