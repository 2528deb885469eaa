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
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import { http2ServersOf } from '../lib/grpc-stream-router.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';

const GUARDED = Symbol('meshward.grpcPortGuard');

/** The server is done with the stream but the client is not: reset it once the status is out. */
function resetWhenAnswered(stream: ServerHttp2Stream, onReset: () => void): void {
  if (stream.readableEnded || stream.closed) return;
  const reset = () => {
    if (stream.closed || stream.readableEnded) return;
    onReset();
    stream.close(constants.NGHTTP2_NO_ERROR);
  };
  // grpc-js sends the status as trailers on 'wantTrailers' when messages preceded it: listeners run
  // in order, so this one runs after the trailers were submitted (RST is queued behind them).
  if (stream.listenerCount('wantTrailers') > 0 && !(stream as { sentTrailers?: unknown }).sentTrailers) stream.once('wantTrailers', () => setImmediate(reset));
  else reset();
}

/** Installs the guard on every HTTP/2 server of `grpc` (after bind and after routeGrpcStreams). Returns how many. */
export function guardGrpcStreams(grpc: GrpcServer, registry: Registry): number {
  const servers = http2ServersOf(grpc) ?? [];
  const open = gauge(registry, 'meshward_grpc_open_streams', 'HTTP/2 streams open on the gRPC port (every method, both paths).');
  const resets = counter(registry, 'meshward_grpc_answered_streams_reset_total', 'Streams answered while the client was still sending (e.g. refused SDS/ADS streams), then reset with NO_ERROR.');
  const onReset = () => resets.inc();
  let guarded = 0;
  for (const h2 of servers as (typeof servers[number] & { [GUARDED]?: true })[]) {
    if (!h2[GUARDED]) {
      h2.prependListener('stream', (stream: ServerHttp2Stream) => {
        open.inc();
        stream.once('close', () => open.dec());
        stream.once('finish', () => resetWhenAnswered(stream, onReset));
      });
      h2[GUARDED] = true;
    }
    guarded++;
  }
  return guarded;
}
