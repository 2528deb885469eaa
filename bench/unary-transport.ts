/**
 * meshward's own HTTP/2 server (src/lib/h2/, the unary gRPC port) alone, for bench/peers.bench.ts:
 * one route that answers a fixed message of argv[2] bytes and does nothing else.
 *
 *   node --import tsx bench/unary-transport.ts <responseBytes>
 * prints {"port":…} once listening.
 */
import { createUnaryServer } from '../src/lib/h2/server.ts';
import { framed } from '../src/lib/grpc-unary-stream.ts';

const answer = framed(Buffer.alloc(Number(process.argv[2]), 0x61));
const server = createUnaryServer({
  routes: new Map([['/bench.Transport/Unary', {
    method: { deserialize: (m: Buffer) => m, serialize: () => answer.subarray(5), serializeFramed: () => answer, handle: () => answer, failure: () => ({ code: 13, message: 'unreachable' }) },
  }]]),
});
const port = await server.listen('127.0.0.1', 0);
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.once('SIGTERM', () => void server.close(0).then(() => process.exit(0)));
