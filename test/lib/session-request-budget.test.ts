/**
 * The gRPC port's fast path bounds the request bytes of unfinished calls per HTTP/2 session: past
 * the budget a large call stops being read until older ones end, the oldest always keeps reading
 * (so calls that exceed it together all end), and small calls are never held up.
 */
import http2 from 'node:http2';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { routeGrpcStreams } from '../../src/lib/grpc-stream-router.ts';
import { streamHandlerOf } from '../../src/lib/grpc-unary-stream.ts';
import { bufferRoute, grpcMessage } from './h2/raw-client.ts';

const ECHO = '/t.Test/Echo';
const servers: Server[] = [];
const sessions: http2.ClientHttp2Session[] = [];
afterEach(() => {
  sessions.splice(0).forEach((s) => s.destroy());
  servers.splice(0).forEach((s) => s.forceShutdown());
});

/** A grpc-js server whose ECHO goes through the fast path with `budget` bytes per session; a client session to it. */
async function start(budget: number): Promise<http2.ClientHttp2Session> {
  const server = new Server();
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  expect(routeGrpcStreams(server, new Map([[ECHO, streamHandlerOf(bufferRoute((m) => m), { maxSessionRequestBytes: budget })]]))).toBe(1);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

interface Call { stream: http2.ClientHttp2Stream; answered: Promise<number>; isAnswered(): boolean }

/** Opens an ECHO call and writes `first` bytes of a `size`-byte message (all of it, ended, when first === size). */
function open(session: http2.ClientHttp2Session, size: number, first = size): Call {
  const stream = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc' });
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

describe('the fast path request budget per HTTP/2 session', () => {
  it('stops reading a large call past the budget while an older call holds bytes, and answers it once that one ends; small calls go on', async () => {
    const session = await start(100_000);
    const older = open(session, 150_000, 90_000);
    await sleep(100);
    const large = open(session, 150_000);
    await sleep(500);
    expect(large.isAnswered()).toBe(false);
    // A small call on the same connection is not held up by the budget.
    expect(await open(session, 1000).answered).toBe(1005);
    expect(large.isAnswered()).toBe(false);
    finish(older);
    expect(await older.answered).toBe(150_005);
    expect(await large.answered).toBe(150_005);
  });

  it('keeps reading the oldest unfinished call past the budget, so calls that exceed it together are all answered', async () => {
    const session = await start(100_000);
    const calls = [open(session, 150_000), open(session, 150_000), open(session, 150_000)];
    expect(await Promise.all(calls.map((c) => c.answered))).toEqual([150_005, 150_005, 150_005]);
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
