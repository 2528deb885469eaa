/**
 * Raw-frame attacks on the unary HTTP/2 server (src/lib/h2): each asserts the exact outcome
 * (GOAWAY code, RST_STREAM code or answer) and that the server still serves a fresh connection.
 */
import http2 from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UnaryRoute } from '../../../src/lib/grpc-unary-stream.ts';
import { DEFAULT_H2_LIMITS, H2Connection, type H2Limits } from '../../../src/lib/h2/connection.ts';
import { errorName, H2Error, PREFACE, Setting, settingsFrame } from '../../../src/lib/h2/frames.ts';
import { encodeHeaderBlock } from '../../../src/lib/h2/hpack.ts';
import { createUnaryServer, type UnaryServer } from '../../../src/lib/h2/server.ts';
import { bufferRoute, decodeGoaway, Flag, FrameType, grpcMessage, literalIndexed, RawClient, type RawClientOptions, type RawFrame, rawFrame, requestFields, sleep, u32 } from './raw-client.ts';

const ECHO = '/t.Test/Echo';
const PARKED = '/t.Test/Parked';
/** Headers the last ECHO call saw. */
let lastHeaders: Record<string, unknown> = {};

const baseRoutes: Record<string, UnaryRoute> = {
  [ECHO]: bufferRoute((message, headers) => {
    lastHeaders = { ...headers };
    return message;
  }),
  // Admission never comes: the call stays parked, unread.
  [PARKED]: bufferRoute(() => Buffer.from('never'), { admission: () => new Promise<void>(() => {}) }),
};

const servers: UnaryServer[] = [];
const clients: RawClient[] = [];

async function startServer(limits: Partial<H2Limits> = {}, routes: Record<string, UnaryRoute> = baseRoutes): Promise<{ server: UnaryServer; port: number }> {
  const server = createUnaryServer({ routes: new Map(Object.entries(routes)), limits });
  servers.push(server);
  return { server, port: await server.listen('127.0.0.1', 0) };
}

let port = 0;

beforeAll(async () => {
  ({ port } = await startServer({ maxConcurrentStreams: 100 }));
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
});

async function open(at = port, settings: ReadonlyArray<readonly [number, number]> = [], options: RawClientOptions = {}): Promise<RawClient> {
  const client = await RawClient.open(at, settings, options);
  clients.push(client);
  return client;
}

async function connectOnly(at = port, options: RawClientOptions = {}): Promise<RawClient> {
  const client = await RawClient.connect(at, options);
  clients.push(client);
  return client;
}

/** The server answered GOAWAY with `code` and closed the connection. */
async function expectGoaway(client: RawClient, code: keyof typeof H2Error, lastStreamId?: number): Promise<void> {
  const goaway = await client.goaway();
  expect(errorName(goaway.code), goaway.debug).toBe(code);
  if (lastStreamId !== undefined) expect(goaway.lastStreamId).toBe(lastStreamId);
  await withTimeout(client.closed, 3000, 'the server did not close the connection');
}

async function expectRst(client: RawClient, streamId: number, code: keyof typeof H2Error): Promise<void> {
  expect(errorName(await client.rstCode(streamId))).toBe(code);
}

/** A good call on `client` (stream `streamId`) is answered. */
async function expectEcho(client: RawClient, streamId: number, text = `alive ${streamId}`): Promise<void> {
  client.call(streamId, ECHO, Buffer.from(text));
  const answer = await client.answer(streamId);
  expect(answer.headers?.[':status']).toBe('200');
  expect(answer.data).toEqual(grpcMessage(Buffer.from(text)));
  expect(answer.trailers?.['grpc-status']).toBe('0');
}

/** The server still serves a fresh, well-behaved connection. */
async function expectStillServes(at = port): Promise<void> {
  const fresh = await open(at);
  await expectEcho(fresh, 1);
  fresh.close();
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(message)))]);
}

/** `count` PINGs numbered 0..count-1 in their last 4 bytes, in one buffer. */
function pingFlood(count: number): Buffer {
  const out = Buffer.alloc(count * 17);
  for (let i = 0; i < count; i++) {
    out.writeUIntBE(8, i * 17, 3);
    out[i * 17 + 3] = FrameType.PING;
    out.writeUInt32BE(i, i * 17 + 13);
  }
  return out;
}

/** An ACK of a pingFlood PING (number `n`, or any). */
function isFloodAck(n?: number): (f: RawFrame) => boolean {
  return (f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0 && f.payload.readUInt32BE(0) === 0 && (n === undefined || f.payload.readUInt32BE(4) === n);
}

const block = (path = ECHO, extra: ReadonlyArray<readonly [string, string]> = []) => encodeHeaderBlock(requestFields(path, extra));

describe('connection preface and SETTINGS', () => {
  it('answers a bad preface with GOAWAY PROTOCOL_ERROR and closes', async () => {
    const client = await connectOnly();
    client.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers a first frame that is not SETTINGS with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await connectOnly();
    client.send(Buffer.concat([PREFACE, rawFrame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers a frame longer than 16,384 bytes with GOAWAY FRAME_SIZE_ERROR', async () => {
    const client = await open();
    client.data(1, Buffer.alloc(16_385));
    await expectGoaway(client, 'FRAME_SIZE_ERROR');
    await expectStillServes();
  });

  it('answers SETTINGS whose length is not a multiple of 6 with GOAWAY FRAME_SIZE_ERROR', async () => {
    const client = await open();
    client.frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(7));
    await expectGoaway(client, 'FRAME_SIZE_ERROR');
    await expectStillServes();
  });

  it('answers SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 with GOAWAY FLOW_CONTROL_ERROR', async () => {
    const client = await open(port, [[Setting.INITIAL_WINDOW_SIZE, 2 ** 31]]);
    await expectGoaway(client, 'FLOW_CONTROL_ERROR');
    await expectStillServes();
  });

  it('answers SETTINGS_ENABLE_PUSH=2 with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open(port, [[Setting.ENABLE_PUSH, 2]]);
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers PUSH_PROMISE from a client with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open();
    client.frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.concat([u32(2), block()]));
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers a 7-byte PING with GOAWAY FRAME_SIZE_ERROR', async () => {
    const client = await open();
    client.frame(FrameType.PING, 0, 0, Buffer.alloc(7));
    await expectGoaway(client, 'FRAME_SIZE_ERROR');
    await expectStillServes();
  });

  it('closes a connection whose preface does not arrive within prefaceTimeoutMs', async () => {
    const { port: p } = await startServer({ prefaceTimeoutMs: 200 });
    const silent = await connectOnly(p);
    const partial = await connectOnly(p);
    partial.send(PREFACE.subarray(0, 10));
    await withTimeout(Promise.all([silent.closed, partial.closed]), 3000, 'not closed after the preface timeout');
    await expectStillServes(p);
  });

  it('says GOAWAY NO_ERROR to a connection idle for idleTimeoutMs and closes it', async () => {
    const { port: p } = await startServer({ idleTimeoutMs: 200 });
    const client = await open(p);
    await expectEcho(client, 1);
    await expectGoaway(client, 'NO_ERROR', 2 ** 31 - 1);
    // The client never answered the shutdown PING: the final GOAWAY came after a second anyway.
    const goaways = client.frames.filter((f) => f.type === FrameType.GOAWAY).map(decodeGoaway);
    expect(goaways.map((g) => [errorName(g.code), g.lastStreamId])).toEqual([['NO_ERROR', 2 ** 31 - 1], ['NO_ERROR', 1]]);
    await expectStillServes(p);
  });

  it('closes gracefully in two steps, answering a call the client sent before it saw the first GOAWAY', async () => {
    const { port: p, server } = await startServer();
    const client = await open(p);
    await expectEcho(client, 1);
    const closing = server.close(5000);
    const first = await client.goaway();
    expect([errorName(first.code), first.lastStreamId]).toEqual(['NO_ERROR', 2 ** 31 - 1]);
    const ping = await client.waitFor((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) === 0);
    // In flight when the first GOAWAY was sent: still taken.
    client.call(3, ECHO, Buffer.from('in flight'));
    client.frame(FrameType.PING, Flag.ACK, 0, ping.payload);
    const answer = await client.answer(3);
    expect(answer.data).toEqual(grpcMessage(Buffer.from('in flight')));
    const last = decodeGoaway(await client.waitFor((f) => f.type === FrameType.GOAWAY && decodeGoaway(f).lastStreamId !== 2 ** 31 - 1));
    expect([errorName(last.code), last.lastStreamId]).toEqual(['NO_ERROR', 3]);
    await withTimeout(client.closed, 3000, 'the server did not close the connection');
    await closing;
  });

  it('closes an idle connection even when the client never closes its side', async () => {
    const { port: p, server } = await startServer({ idleTimeoutMs: 200 });
    const client = await open(p, [], { halfOpen: true });
    await expectEcho(client, 1);
    expect(errorName((await client.goaway()).code)).toBe('NO_ERROR');
    // Our side stays open, so only the server's count shows that it let the connection go.
    await expect.poll(() => server.connectionCount(), { timeout: 5000 }).toBe(0);
  });
});

describe('stream identifiers and states', () => {
  it('answers HEADERS on an even stream id with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(2, block(), { endStream: true });
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers HEADERS on stream 0 with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(0, block(), { endStream: true });
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers a stream id lower than a previous one with GOAWAY STREAM_CLOSED', async () => {
    const client = await open();
    await expectEcho(client, 5);
    client.call(3, ECHO, Buffer.from('late'));
    await expectGoaway(client, 'STREAM_CLOSED', 5);
    await expectStillServes();
  });

  it('ignores trailers a client sent on a stream it had not yet seen reset, and carries on', async () => {
    const client = await open();
    client.headers(1, block('/t.Test/Nope'), { endStream: false });
    await expectRst(client, 1, 'NO_ERROR');
    client.headers(1, encodeHeaderBlock([['x-trailer', 'late']]), { endStream: true });
    await expectEcho(client, 3);
    expect(client.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('answers DATA on an idle stream with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open();
    client.data(7, grpcMessage(Buffer.from('x')), true);
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers DATA beyond the stream window of a parked call with RST_STREAM FLOW_CONTROL_ERROR, and the connection carries on', async () => {
    const client = await open();
    client.headers(1, block(PARKED));
    client.dataChunked(1, Buffer.alloc(70_000));
    await expectRst(client, 1, 'FLOW_CONTROL_ERROR');
    await expectEcho(client, 3);
  });

  it('answers a WINDOW_UPDATE that overflows the connection window with GOAWAY FLOW_CONTROL_ERROR', async () => {
    const client = await open();
    client.windowUpdate(0, 2 ** 31 - 1);
    await expectGoaway(client, 'FLOW_CONTROL_ERROR');
    await expectStillServes();
  });

  it('answers a WINDOW_UPDATE of 0 on a stream with RST_STREAM PROTOCOL_ERROR, and the connection carries on', async () => {
    const client = await open();
    client.headers(1, block(PARKED));
    client.windowUpdate(1, 0);
    await expectRst(client, 1, 'PROTOCOL_ERROR');
    await expectEcho(client, 3);
  });

  it('answers padding longer than the frame with GOAWAY PROTOCOL_ERROR (HEADERS and DATA)', async () => {
    const headers = await open();
    headers.frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED, 1, Buffer.concat([Buffer.from([200]), Buffer.alloc(10)]));
    await expectGoaway(headers, 'PROTOCOL_ERROR');
    const data = await open();
    data.headers(1, block(PARKED));
    data.frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([4, 0, 0, 0]));
    await expectGoaway(data, 'PROTOCOL_ERROR', 1);
    await expectStillServes();
  });

  it('keeps an answer intact when the client shrinks its window below zero while the answer waits', async () => {
    const big = Buffer.alloc(200_000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const { port: p } = await startServer({}, { '/t.Test/Big': bufferRoute(() => big) });
    const client = await open(p);
    client.call(1, '/t.Test/Big', Buffer.alloc(0));
    // The server sends one 65,535-byte window, then waits for credit.
    await client.waitFor((f) => f.type === FrameType.DATA && f.streamId === 1);
    await client.barrier();
    client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]));
    client.windowUpdate(1, 1); // the stream window is now -65,534: still nothing may be sent
    await client.barrier();
    client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_535]]));
    client.windowUpdate(0, 1 << 20);
    for (let i = 0; i < 8; i++) client.windowUpdate(1, 65_535);
    const answer = await client.answer(1);
    expect(answer.trailers?.['grpc-status']).toBe('0');
    expect(answer.data.length).toBe(big.length + 5);
    expect(answer.data.equals(grpcMessage(big))).toBe(true);
  });
});

describe('header blocks', () => {
  it('answers HEADERS interrupted by another frame before END_HEADERS with GOAWAY PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(1, block(), { endHeaders: false });
    client.frame(FrameType.PING, 0, 0, Buffer.alloc(8));
    await expectGoaway(client, 'PROTOCOL_ERROR');
    await expectStillServes();
  });

  it('answers a CONTINUATION flood with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await open();
    client.headers(1, block(), { endHeaders: false });
    client.send(Buffer.concat(Array.from({ length: 100 }, () => rawFrame(FrameType.CONTINUATION, 0, 1))));
    await expectGoaway(client, 'ENHANCE_YOUR_CALM');
    await expectStillServes();
  });

  it('answers a header block over 64 KiB across CONTINUATIONs with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await open();
    client.headers(1, Buffer.alloc(16_384, 0x82), { endHeaders: false });
    client.send(Buffer.concat(Array.from({ length: 4 }, () => rawFrame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_384, 0x82)))));
    await expectGoaway(client, 'ENHANCE_YOUR_CALM');
    await expectStillServes();
  });

  it('answers an HPACK block indexing entry 0 with GOAWAY COMPRESSION_ERROR', async () => {
    const client = await open();
    client.headers(1, Buffer.from([0x80]), { endStream: true });
    await expectGoaway(client, 'COMPRESSION_ERROR');
    await expectStillServes();
  });

  it('answers an HPACK bomb with :status 431 and keeps the dynamic table in step for the next request', async () => {
    const client = await open();
    const value = 'b'.repeat(4000);
    // Request 1 adds a 4 KB entry (index 62) to the client's and server's tables.
    client.headers(1, Buffer.concat([block(), literalIndexed('x-bomb', value)]));
    client.data(1, grpcMessage(Buffer.from('one')), true);
    expect((await client.answer(1)).data).toEqual(grpcMessage(Buffer.from('one')));
    expect(lastHeaders['x-bomb']).toBe(value);
    // Request 2 references it 100 times: 400 KB decoded from a 100-byte block.
    client.headers(3, Buffer.concat([block(), Buffer.alloc(100, 0x80 | 62)]), { endStream: true });
    const bomb = await client.answer(3);
    expect(bomb.headers?.[':status']).toBe('431');
    // Request 3 references the entry once: it decodes to the same value.
    lastHeaders = {};
    client.headers(5, Buffer.concat([block(), Buffer.from([0x80 | 62])]));
    client.data(5, grpcMessage(Buffer.from('three')), true);
    expect((await client.answer(5)).data).toEqual(grpcMessage(Buffer.from('three')));
    expect(lastHeaders['x-bomb']).toBe(value);
  });

  it('resets a stream whose header name has an uppercase letter with RST_STREAM PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(1, block(ECHO, [['X-Upper', 'v']]), { endStream: true });
    await expectRst(client, 1, 'PROTOCOL_ERROR');
    await expectEcho(client, 3);
  });

  it('resets a stream without :path with RST_STREAM PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(1, encodeHeaderBlock(requestFields(ECHO).filter(([name]) => name !== ':path')), { endStream: true });
    await expectRst(client, 1, 'PROTOCOL_ERROR');
    await expectEcho(client, 3);
  });

  it('resets a stream carrying `connection: keep-alive` with RST_STREAM PROTOCOL_ERROR', async () => {
    const client = await open();
    client.headers(1, block(ECHO, [['connection', 'keep-alive']]), { endStream: true });
    await expectRst(client, 1, 'PROTOCOL_ERROR');
    await expectEcho(client, 3);
  });

  it('resets a stream with a repeated pseudo-header with RST_STREAM PROTOCOL_ERROR', async () => {
    const client = await open();
    const fields = requestFields(ECHO);
    fields.splice(3, 0, [':path', '/other']); // among the pseudo-headers, after the first :path
    client.headers(1, encodeHeaderBlock(fields), { endStream: true });
    await expectRst(client, 1, 'PROTOCOL_ERROR');
    await expectEcho(client, 3);
  });

  it('resets a stream whose header value has CR, LF or NUL, or whose name has a space, with RST_STREAM PROTOCOL_ERROR', async () => {
    const client = await open();
    const bad: Array<readonly [string, string]> = [
      ['x-injected', 'a\r\nx-admin: true'],
      ['x-nul', 'a\0b'],
      ['x-lf', 'a\nb'],
      ['bad name', 'v'],
    ];
    for (const [i, field] of bad.entries()) {
      const id = 1 + 2 * i;
      client.headers(id, block(ECHO, [field]), { endStream: true });
      await expectRst(client, id, 'PROTOCOL_ERROR');
    }
    await expectEcho(client, 21);
  });
});

describe('floods and limits', () => {
  it('answers more than 1000 empty DATA frames with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await open();
    client.headers(1, block(PARKED));
    client.send(Buffer.concat(Array.from({ length: 1001 }, () => rawFrame(FrameType.DATA, 0, 1))));
    await expectGoaway(client, 'ENHANCE_YOUR_CALM', 1);
    await expectStillServes();
  });

  it('counts empty DATA frames on a closed stream too', async () => {
    const client = await open();
    await expectEcho(client, 1);
    client.send(Buffer.concat(Array.from({ length: 1001 }, () => rawFrame(FrameType.DATA, 0, 1))));
    await expectGoaway(client, 'ENHANCE_YOUR_CALM', 1);
    await expectStillServes();
  });

  it('answers a client that resets streams with REFUSED_STREAM beyond the concurrent limit (rapid reset)', async () => {
    let running = 0;
    let maxRunning = 0;
    let started = 0;
    const { port: p } = await startServer({ maxConcurrentStreams: 10 }, {
      [ECHO]: baseRoutes[ECHO]!,
      '/t.Test/Slow': bufferRoute(async (message) => {
        started++;
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(200);
        running--;
        return message;
      }),
    });
    const client = await open(p);
    await client.barrier();
    const burst: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const id = 1 + 2 * i;
      burst.push(rawFrame(FrameType.HEADERS, Flag.END_HEADERS, id, block('/t.Test/Slow')));
      burst.push(rawFrame(FrameType.DATA, Flag.END_STREAM, id, grpcMessage(Buffer.from('x'))));
      burst.push(rawFrame(FrameType.RST_STREAM, 0, id, u32(H2Error.CANCEL)));
    }
    client.send(Buffer.concat(burst));
    const refused = () => client.frames.filter((f) => f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) === H2Error.REFUSED_STREAM);
    await client.waitFor(() => refused().length >= 90);
    await client.barrier();
    expect(refused().map((f) => f.streamId)).toEqual(Array.from({ length: 90 }, (_, i) => 21 + 2 * i));
    expect(started).toBe(10);
    expect(maxRunning).toBe(10);
    // The reset calls keep their slots until their handlers end, then the connection serves again.
    client.call(201, ECHO, Buffer.from('too soon'));
    await expectRst(client, 201, 'REFUSED_STREAM');
    await expect.poll(() => running, { timeout: 5000 }).toBe(0);
    await expectEcho(client, 203);
    expect(maxRunning).toBe(10);
    expect(client.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('says GOAWAY ENHANCE_YOUR_CALM after more than 1000 resets of unanswered calls that are most of the streams', async () => {
    const { port: p } = await startServer({ maxConcurrentStreams: 2000 }, {
      [ECHO]: baseRoutes[ECHO]!,
      // Long enough that every reset arrives before its answer, even if the burst is read in pieces.
      '/t.Test/Brief': bufferRoute(async (message) => {
        await sleep(100);
        return message;
      }),
    });
    const client = await open(p);
    const resetCalls = (from: number, count: number) => {
      const frames: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const id = from + 2 * i;
        frames.push(rawFrame(FrameType.HEADERS, Flag.END_HEADERS, id, block('/t.Test/Brief')));
        frames.push(rawFrame(FrameType.DATA, Flag.END_STREAM, id, grpcMessage(Buffer.from('x'))));
        frames.push(rawFrame(FrameType.RST_STREAM, 0, id, u32(H2Error.CANCEL)));
      }
      client.send(Buffer.concat(frames));
    };
    resetCalls(1, 1000);
    await client.barrier();
    expect(client.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
    resetCalls(2001, 1);
    await expectGoaway(client, 'ENHANCE_YOUR_CALM', 2001);
    await expectStillServes(p);
  });

  it('counts answers waiting for flow-control window against the concurrent limit (a client that never opens its window)', async () => {
    const { port: p } = await startServer({ maxConcurrentStreams: 5 });
    const client = await open(p, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    for (let i = 0; i < 10; i++) client.call(1 + 2 * i, ECHO, Buffer.from(`held ${i}`));
    await client.barrier();
    // Five answers started (headers out, message held by the zero window); the rest were refused.
    const refused = client.frames.filter((f) => f.type === FrameType.RST_STREAM).map((f) => [f.streamId, errorName(f.payload.readUInt32BE(0))]);
    expect(refused).toEqual([11, 13, 15, 17, 19].map((id) => [id, 'REFUSED_STREAM']));
    client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 65_535]]));
    for (let i = 0; i < 5; i++) expect((await client.answer(1 + 2 * i)).data).toEqual(grpcMessage(Buffer.from(`held ${i}`)));
    await expectEcho(client, 21);
  });

  it('bounds running handlers by the concurrent limit even when calls time out (grpc-timeout) before their handler ends', async () => {
    let running = 0;
    let maxRunning = 0;
    const { port: p } = await startServer({ maxConcurrentStreams: 5 }, {
      [ECHO]: baseRoutes[ECHO]!,
      '/t.Test/Slow': bufferRoute(async (message) => {
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(300);
        running--;
        return message;
      }),
    });
    const client = await open(p);
    // Each call asks for a 1 ms deadline: DEADLINE_EXCEEDED comes long before the handler ends.
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) {
        const id = 1 + 2 * (round * 5 + i);
        client.call(id, '/t.Test/Slow', Buffer.from('x'), [['grpc-timeout', '1m']]);
      }
      await sleep(30);
    }
    await client.barrier();
    expect(maxRunning).toBeLessThanOrEqual(5);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => client.answer(1 + 2 * i)));
    const statuses = answers.map((a) => (a.rstCode !== undefined ? `rst ${errorName(a.rstCode)}` : a.headers?.['grpc-status']));
    expect(statuses.filter((s) => s === '4')).toHaveLength(5); // DEADLINE_EXCEEDED
    expect(statuses.filter((s) => s === 'rst REFUSED_STREAM')).toHaveLength(15);
  });

  it('answers more than 1000 SETTINGS frames that change INITIAL_WINDOW_SIZE with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const client = await open();
    await expectEcho(client, 1);
    client.send(Buffer.concat(Array.from({ length: 1000 }, (_, i) => settingsFrame([[Setting.INITIAL_WINDOW_SIZE, i % 2 === 0 ? 65_534 : 65_535]]))));
    await expectEcho(client, 3); // 1000 changes: tolerated
    client.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 1000]]));
    await expectGoaway(client, 'ENHANCE_YOUR_CALM', 3);
    await expectStillServes();
  });

  it('applies a SETTINGS frame that repeats INITIAL_WINDOW_SIZE thousands of times as its last value, counted as one change', async () => {
    const { port: p } = await startServer({}, { '/t.Test/Big': bufferRoute(() => Buffer.alloc(100_000, 7)) });
    const client = await open(p, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    client.call(1, '/t.Test/Big', Buffer.alloc(0));
    await client.waitFor((f) => f.type === FrameType.HEADERS && f.streamId === 1);
    const entries = Array.from({ length: 2730 }, (_, i): [number, number] => [Setting.INITIAL_WINDOW_SIZE, i === 2729 ? 200_000 : i % 1000]);
    client.send(Buffer.concat(Array.from({ length: 300 }, () => settingsFrame(entries))));
    client.windowUpdate(0, 1 << 20);
    const answer = await client.answer(1);
    expect(answer.data).toEqual(grpcMessage(Buffer.alloc(100_000, 7)));
    // 300 changes, not 819,000: under the 1000 budget.
    expect(client.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(false);
  });

  it('stops reading a client that does not read, and serves it again once it does (PING flood)', async () => {
    const { port: p, server } = await startServer();
    const client = await open(p);
    await client.barrier();
    client.pause();
    const count = 200_000;
    client.send(pingFlood(count));
    await sleep(300);
    expect(server.connectionCount()).toBe(1);
    client.resume();
    await client.waitFor(isFloodAck(count - 1), 20_000);
    expect(client.frames.filter(isFloodAck()).length).toBe(count);
    await expectEcho(client, 1);
  });

  it('keeps the output it queues for a client that does not read near 1 MiB by pausing its reads', async () => {
    let maxQueued = 0;
    let pauses = 0;
    let resumes = 0;
    const sockets: Socket[] = [];
    const net: NetServer = createNetServer((socket) => {
      sockets.push(socket);
      const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
      socket.write = ((chunk: Buffer) => {
        const ok = write(chunk);
        maxQueued = Math.max(maxQueued, socket.writableLength);
        return ok;
      }) as typeof socket.write;
      const pause = socket.pause.bind(socket);
      socket.pause = () => {
        pauses++;
        return pause();
      };
      const resume = socket.resume.bind(socket);
      socket.resume = () => {
        resumes++;
        return resume();
      };
      new H2Connection(socket, new Map(Object.entries(baseRoutes)), DEFAULT_H2_LIMITS, { connectionError() {}, streamError() {} });
    });
    await new Promise<void>((resolve) => net.listen(0, '127.0.0.1', resolve));
    try {
      const address = net.address();
      const client = await open(typeof address === 'object' && address ? address.port : 0);
      await client.barrier();
      client.pause();
      const count = 400_000;
      client.send(pingFlood(count));
      await expect.poll(() => pauses, { timeout: 10_000 }).toBeGreaterThan(0);
      await sleep(200);
      // One socket read (64 KiB of PINGs) can still be processed after the pause.
      expect(maxQueued).toBeLessThan((1 << 20) + 128 * 1024);
      client.resume();
      await client.waitFor(isFloodAck(count - 1), 20_000);
      expect(resumes).toBeGreaterThan(0);
      await expectEcho(client, 1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => net.close(resolve));
    }
  });
});

describe('slow and stuck clients', () => {
  it('refuses what cannot become the preface at once, not after the preface timeout', async () => {
    const { port: p } = await startServer({ prefaceTimeoutMs: 60_000 });
    const client = await connectOnly(p);
    client.send(Buffer.from('GET'));
    await expectGoaway(client, 'PROTOCOL_ERROR');
  });

  it('answers a call whose frames arrive one byte per segment', async () => {
    const client = await open();
    await client.barrier();
    const message = Buffer.alloc(3000, 5);
    const frames = Buffer.concat([
      rawFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, block()),
      rawFrame(FrameType.DATA, Flag.END_STREAM, 1, grpcMessage(message)),
    ]);
    for (const byte of frames) {
      client.send(Buffer.from([byte]));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const answer = await client.answer(1, 20_000);
    expect(answer.data).toEqual(grpcMessage(message));
  });

  it('resets a stream whose request does not end within streamTimeoutMs, and frees its slot', async () => {
    const { port: p } = await startServer({ streamTimeoutMs: 300, maxConcurrentStreams: 1 });
    const client = await open(p);
    client.headers(1, block(), { endStream: false });
    client.data(1, Buffer.from([0, 0, 0, 0, 10]));
    await expectRst(client, 1, 'CANCEL');
    await expectEcho(client, 3);
  });

  it('resets a stream whose answer the client never lets out within streamTimeoutMs, and frees its slot', async () => {
    const { port: p } = await startServer({ streamTimeoutMs: 300, maxConcurrentStreams: 1 }, { ...baseRoutes, '/t.Test/Big': bufferRoute(() => Buffer.alloc(100_000)) });
    const client = await open(p, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    client.call(1, '/t.Test/Big', Buffer.alloc(0));
    await expectRst(client, 1, 'CANCEL');
    client.frame(FrameType.SETTINGS, 0, 0, Buffer.concat([Buffer.from([0, Setting.INITIAL_WINDOW_SIZE]), u32(65_535)]));
    await expectEcho(client, 3);
  });

  it('stops giving window credit past maxBufferedRequestBytes of unfinished requests, and gives it again when one ends', async () => {
    const { port: p } = await startServer({ maxBufferedRequestBytes: 100_000 });
    const client = await open(p);
    const credited = (streamId: number) => client.frames.some((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === streamId);
    const prefix = Buffer.from([0, 0, 0, 0xea, 0x60]); // a 60,000-byte message follows
    for (const id of [1, 3, 5]) {
      client.headers(id, block(), { endStream: false });
      client.dataChunked(id, Buffer.concat([prefix, Buffer.alloc(40_000, id)]));
    }
    await client.barrier();
    expect([credited(1), credited(3), credited(5)]).toEqual([true, true, false]);
    client.dataChunked(1, Buffer.alloc(20_000, 1), true);
    await client.answer(1);
    await client.barrier();
    expect(credited(5)).toBe(true);
  });

  it('past that budget, credits the next oldest stream as soon as the oldest is reset, even one that never sent a byte', async () => {
    const { port: p } = await startServer({ maxBufferedRequestBytes: 100_000 });
    const client = await open(p);
    const credits = (streamId: number) => client.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === streamId).length;
    const prefix = Buffer.from([0, 0, 0x02, 0x49, 0xf0]); // a 150,000-byte message follows
    client.headers(1, block(), { endStream: false }); // the oldest: headers, then nothing
    for (const id of [3, 5]) {
      client.headers(id, block(), { endStream: false });
      client.dataChunked(id, Buffer.concat([prefix, Buffer.alloc(60_000, id)]));
    }
    client.dataChunked(3, Buffer.alloc(20_000, 3)); // past the budget: stream 3 starves behind stream 1
    await client.barrier();
    expect(credits(3)).toBe(1);
    client.rst(1, H2Error.CANCEL);
    await client.barrier();
    expect(credits(3)).toBe(2);
  });

  it('still credits the oldest unfinished stream past that budget, so a client whose large requests exceed it together gets them all answered, one after another', async () => {
    // Two 150 KB requests against a 100 KB budget: with credit withheld from every stream, neither
    // could ever end (each needs more than its first window) and both would wait for the stream
    // timeout; the oldest keeps its credit, ends, and its bytes go to the next.
    const { port: p } = await startServer({ maxBufferedRequestBytes: 100_000, streamTimeoutMs: 60_000 });
    const session = http2.connect(`http://127.0.0.1:${p}`);
    session.on('error', () => {});
    try {
      const call = (fill: number) => new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc' });
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve(Buffer.concat(chunks).length));
        stream.on('error', reject);
        stream.end(grpcMessage(Buffer.alloc(150_000, fill)));
      });
      const answered = await withTimeout(Promise.all([call(1), call(2)]), 5000, 'requests over the budget together were never answered');
      expect(answered).toEqual([150_005, 150_005]);
    } finally {
      session.destroy();
    }
  });
});
