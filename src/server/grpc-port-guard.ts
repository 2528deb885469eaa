/**
 * HTTP/2 stream hygiene on the gRPC port, below grpc-js and the fast path (both share its
 * HTTP/2 sessions, see lib/grpc-stream-router.ts):
 *
 * - A stream the server has answered completely (status sent) while the client is still sending
 *   is reset with NO_ERROR, as RFC 9113 §8.1 provides for "a complete response before the request
 *   ended". grpc-js sends the status of a refused stream (UNAUTHENTICATED on SDS/ADS) but keeps the
 *   stream, its call object and listeners until the client hangs up: 50,000 unauthenticated
 *   streams held 450 MB. Reset, the stream closes and everything tied to it is released.
 * - `meshward_grpc_open_streams` counts open streams (any method), so a leak is visible.
 * - Request bytes per connection are bounded for the methods whose client sends one message and
 *   ends its side (unary and server-streaming, on the fast path or grpc-js's):
 *   lib/session-request-budget.ts.
 */
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { http2ServersOf, methodTypesOf } from '../lib/grpc-stream-router.ts';
import { DEFAULT_SESSION_REQUEST_BYTES, trackWhenRead } from '../lib/session-request-budget.ts';
import { type Counter, counter, sampledGauge, type Registry } from '../lib/metrics.ts';

const GUARDED = Symbol('meshward.grpcPortGuard');

/**
 * A `finish` listener (the server is done with the stream; `this` is the stream, so no closure is
 * made per stream): when the client is still sending, reset the stream once the status is out.
 */
function resetWhenAnswered(resets: Counter): (this: ServerHttp2Stream) => void {
  return function (this: ServerHttp2Stream) {
    if (this.readableEnded || this.closed) return;
    const reset = () => {
      if (this.closed || this.readableEnded) return;
      resets.inc();
      this.close(constants.NGHTTP2_NO_ERROR);
    };
    // grpc-js sends the status as trailers on 'wantTrailers' when messages preceded it: listeners
    // run in order, so this one runs after the trailers were submitted (RST is queued behind them).
    if (this.listenerCount('wantTrailers') > 0 && !(this as { sentTrailers?: unknown }).sentTrailers) this.once('wantTrailers', () => setImmediate(reset));
    else reset();
  };
}

export interface GrpcGuardOptions {
  /** Request bytes of unfinished one-message calls per connection (lib/session-request-budget.ts; default 16 MiB). */
  maxSessionRequestBytes?: number;
  /** Paths served by the fast path (routeGrpcStreams): their calls count themselves in the budget. */
  fastPaths?: readonly string[];
}

/** Installs the guard on every HTTP/2 server of `grpc` (after bind and after routeGrpcStreams). Returns how many. */
export function guardGrpcStreams(grpc: GrpcServer, registry: Registry, options: GrpcGuardOptions = {}): number {
  const budget = options.maxSessionRequestBytes ?? DEFAULT_SESSION_REQUEST_BYTES;
  const typeOf = methodTypesOf(grpc);
  const fastPaths = new Set(options.fastPaths);
  const servers = http2ServersOf(grpc) ?? [];
  // Counted in a plain number and read at scrape time: every Check passes here.
  let openStreams = 0;
  sampledGauge(registry, 'meshward_grpc_open_streams', 'HTTP/2 streams open on the gRPC port (every method, both paths).', () => openStreams);
  const closed = () => openStreams--;
  const onFinish = resetWhenAnswered(counter(registry, 'meshward_grpc_answered_streams_reset_total', 'Streams answered while the client was still sending (e.g. refused SDS/ADS streams), then reset with NO_ERROR.'));
  let guarded = 0;
  for (const h2 of servers as (typeof servers[number] & { [GUARDED]?: true })[]) {
    if (!h2[GUARDED]) {
      h2.prependListener('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
        openStreams++;
        stream.once('close', closed);
        stream.once('finish', onFinish);
        const path = headers[':path'] as string;
        if (fastPaths.has(path)) return;
        const type = typeOf?.(path);
        if (type === 'unary' || type === 'serverStream') trackWhenRead(stream, budget);
      });
      h2[GUARDED] = true;
    }
    guarded++;
  }
  return guarded;
}
