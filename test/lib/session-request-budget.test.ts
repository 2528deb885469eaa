/**
 * The gRPC port bounds the request bytes of unfinished one-message calls per HTTP/2 session, on
 * the fast path and on grpc-js's own unary methods alike: past the budget a large call stops being
 * read until older ones end, the oldest always keeps reading (so calls that exceed it together all
 * end), small calls are never held up, and a stream left unread on purpose stays unread.
 */
import http2 from 'node:http2';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { routeGrpcStreams } from '../../src/lib/grpc-stream-router.ts';
import { streamHandlerOf } from '../../src/lib/grpc-unary-stream.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { guardGrpcStreams } from '../../src/server/grpc-port-guard.ts';
import { bufferRoute, gate, grpcMessage } from './h2/raw-client.ts';

/** On the fast path (and registered with grpc-js, as meshward's fast-path methods are). */
const ECHO = '/t.Test/Echo';
/** grpc-js only. */
const GRPC_JS_ECHO = '/t.Test/GrpcJsEcho';
/** On the fast path, parked until the test opens `admit`. */
const PARKED = '/t.Test/Parked';
const identity = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const service = {
  Echo: { path: ECHO, requestStream: false, responseStream: false, ...identity },
  GrpcJsEcho: { path: GRPC_JS_ECHO, requestStream: false, responseStream: false, ...identity },
  Parked: { path: PARKED, requestStream: false, responseStream: false, ...identity },
};
const echo = (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request);
let admit = gate();
const servers: Server[] = [];
const sessions: http2.ClientHttp2Session[] = [];
afterEach(() => {
  sessions.splice(0).forEach((s) => s.destroy());
  servers.splice(0).forEach((s) => s.forceShutdown());
});

/** A grpc-js server guarded as meshward's gRPC port with `budget` bytes per session; a client session to it. */
async function start(budget: number): Promise<http2.ClientHttp2Session> {
  const server = new Server();
  servers.push(server);
  server.addService(service, { Echo: echo, GrpcJsEcho: echo, Parked: echo });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  admit = gate();
  const options = { maxSessionRequestBytes: budget };
  const routes = new Map([[ECHO, streamHandlerOf(bufferRoute((m) => m), options)], [PARKED, streamHandlerOf(bufferRoute((m) => m, { admission: () => admit.promise }), options)]]);
  expect(routeGrpcStreams(server, routes)).toBe(1);
  expect(guardGrpcStreams(server, createRegistry(), { ...options, fastPaths: [...routes.keys()] })).toBe(1);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

interface Call { stream: http2.ClientHttp2Stream; answered: Promise<number>; isAnswered(): boolean }

/** Opens a call and writes `first` bytes of a `size`-byte message (all of it, ended, when first === size). */
function open(session: http2.ClientHttp2Session, size: number, first = size, path = ECHO): Call {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  const frame = grpcMessage(Buffer.alloc(size, 7));
  let done = false;
  const answered = new Promise<number>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => { done = true; resolve(Buffer.concat(chunks).length); });
    stream.on('error', reject);
  });
  if (first === size) stream.end(frame);
  else stream.write(frame.subarray(0, 5 + first));
  return { stream, answered, isAnswered: () => done, rest: frame.subarray(5 + first) } as Call & { rest: Buffer };
}

const finish = (call: Call) => call.stream.end((call as Call & { rest: Buffer }).rest);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the request budget per HTTP/2 session of the gRPC port', () => {
  for (const [where, path] of [['the fast path', ECHO], ['grpc-js', GRPC_JS_ECHO]] as const) {
    it(`stops reading a large call on ${where} past the budget while an older call holds bytes, and answers it once that one ends; small calls go on`, async () => {
      const session = await start(100_000);
      const older = open(session, 150_000, 90_000, path);
      await sleep(100);
      const large = open(session, 150_000, 150_000, path);
      await sleep(500);
      expect(large.isAnswered()).toBe(false);
      // A small call on the same connection is not held up by the budget.
      expect(await open(session, 1000, 1000, path).answered).toBe(1005);
      expect(large.isAnswered()).toBe(false);
      finish(older);
      expect(await older.answered).toBe(150_005);
      expect(await large.answered).toBe(150_005);
    });

    it(`keeps reading the oldest unfinished call on ${where} past the budget, so calls that exceed it together are all answered`, async () => {
      const session = await start(100_000);
      const calls = [open(session, 150_000, 150_000, path), open(session, 150_000, 150_000, path), open(session, 150_000, 150_000, path)];
      expect(await Promise.all(calls.map((c) => c.answered))).toEqual([150_005, 150_005, 150_005]);
    });
  }

  it('leaves a parked call unread: once admitted it reads its whole message', async () => {
    const session = await start(100_000);
    const parked = open(session, 50_000, 50_000, PARKED);
    await sleep(200);
    expect(parked.isAnswered()).toBe(false);
    admit.open();
    expect(await parked.answered).toBe(50_005);
  });

  it('answers a large call at once when the budget has room', async () => {
    const session = await start(1_000_000);
    const older = open(session, 150_000, 90_000);
    await sleep(100);
    expect(await open(session, 150_000).answered).toBe(150_005);
    finish(older);
    expect(await older.answered).toBe(150_005);
  });
});
