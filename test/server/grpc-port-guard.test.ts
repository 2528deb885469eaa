/** The reset of answered streams must never cost the client its status (trailers after messages). */
import http2 from 'node:http2';
import { Server, ServerCredentials, type ServerDuplexStream, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/lib/metrics.ts';
import { guardGrpcStreams } from '../../src/server/grpc-port-guard.ts';

const identity = (b: Buffer) => b;
const METHOD = { path: '/t.T/Chat', requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };

let server: Server | undefined;
afterEach(() => server?.forceShutdown());

async function serve(handler: (call: ServerDuplexStream<Buffer, Buffer>) => void): Promise<number> {
  server = new Server();
  server.addService({ Chat: METHOD }, { Chat: handler });
  const port = await new Promise<number>((resolve, reject) => server!.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  expect(guardGrpcStreams(server, createRegistry())).toBe(1);
  return port;
}

/** A client that sends one message and never half-closes; resolves what it saw. */
function halfOpenCall(port: number): Promise<{ bytes: number; status?: string; rstCode?: number }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const stream = session.request({ ':method': 'POST', ':path': METHOD.path, 'content-type': 'application/grpc', te: 'trailers' });
  let bytes = 0;
  let grpcStatus: string | undefined;
  stream.on('error', () => {});
  stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
  stream.on('response', (h) => h['grpc-status'] !== undefined && (grpcStatus = String(h['grpc-status'])));
  stream.on('trailers', (h) => (grpcStatus = String(h['grpc-status'])));
  stream.write(Buffer.from([0, 0, 0, 0, 1, 7]));
  return new Promise((resolve) => stream.on('close', () => {
    session.destroy();
    resolve({ bytes, ...(grpcStatus ? { status: grpcStatus } : {}), rstCode: stream.rstCode });
  }));
}

describe('answered streams are reset after their status', () => {
  it('delivers a trailers-only refusal, then resets with NO_ERROR', async () => {
    const port = await serve((call) => call.emit('error', { code: status.UNAUTHENTICATED, details: 'no token' }));
    expect(await halfOpenCall(port)).toEqual({ bytes: 0, status: String(status.UNAUTHENTICATED), rstCode: http2.constants.NGHTTP2_NO_ERROR });
  });

  it('delivers the trailers of a stream that sent messages before failing, then resets with NO_ERROR', async () => {
    const port = await serve((call) => {
      call.write(Buffer.from('one'));
      call.write(Buffer.from('two'));
      setTimeout(() => call.emit('error', { code: status.UNAUTHENTICATED, details: 'token expired' }), 20);
    });
    expect(await halfOpenCall(port)).toEqual({ bytes: 2 * (5 + 3), status: String(status.UNAUTHENTICATED), rstCode: http2.constants.NGHTTP2_NO_ERROR });
  });
});
