/**
 * The unary HTTP/2 server (src/lib/h2) with real clients: grpc-js, node:http2, and the raw client
 * where the test must see frames (flow control while an admission gate holds a call).
 */
import http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { UnaryRoute } from '../../../src/lib/grpc-unary-stream.ts';
import { createUnaryServer, type UnaryServer, type UnaryServerOptions } from '../../../src/lib/h2/server.ts';
import { createTestCa } from '../../helpers/tls.ts';
import { bufferRoute, FrameType, gate, grpcMessage, RawClient, requestFields } from './raw-client.ts';

const identity = (b: Buffer) => b;

const servers: UnaryServer[] = [];
const cleanups: Array<() => void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

async function start(routes: Record<string, UnaryRoute>, options: Omit<UnaryServerOptions, 'routes'> = {}): Promise<{ server: UnaryServer; port: number }> {
  const server = createUnaryServer({ routes: new Map(Object.entries(routes)), ...options });
  servers.push(server);
  const port = await server.listen('127.0.0.1', 0);
  return { server, port };
}

function grpcClient(address: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): grpc.Client {
  const client = new grpc.Client(address, credentials, options);
  cleanups.push(() => client.close());
  return client;
}

function unary(client: grpc.Client, path: string, request: Buffer, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, request, metadata, { deadline: Date.now() + deadlineMs }, (err, reply) => (err ? reject(err) : resolve(reply!)));
  });
}

function unaryError(client: grpc.Client, path: string, request: Buffer): Promise<grpc.ServiceError> {
  return unary(client, path, request).then(
    () => {
      throw new Error('the call succeeded');
    },
    (err: grpc.ServiceError) => err,
  );
}

function http2Session(port: number, settings: http2.Settings = {}): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  session.on('error', () => {});
  cleanups.push(() => session.destroy());
  return session;
}

/** One request on a node:http2 session: response headers, body and trailers. */
function http2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (response = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers: response, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    req.end(body);
  });
}

const echo = bufferRoute((message) => message);

describe('unary HTTP/2 server with grpc-js', () => {
  it('answers a grpc-js unary call over plain TCP', async () => {
    const { port } = await start({ '/test.Echo/Echo': echo });
    const client = grpcClient(`127.0.0.1:${port}`);
    expect((await unary(client, '/test.Echo/Echo', Buffer.from('hello'))).toString()).toBe('hello');
    expect((await unary(client, '/test.Echo/Echo', Buffer.alloc(0))).length).toBe(0);
  });

  it('answers a grpc-js unary call over TLS negotiated with ALPN h2', async () => {
    const ca = await createTestCa();
    const leaf = await ca.sign({ dns: ['localhost'], ip: ['127.0.0.1'] });
    const { port } = await start({ '/test.Echo/Echo': echo }, { tls: { cert: leaf.certPem, key: leaf.keyPem } });
    const client = grpcClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(ca.certPem)));
    expect((await unary(client, '/test.Echo/Echo', Buffer.from('over tls'))).toString()).toBe('over tls');
  });

  it('refuses a TLS client that offers only http/1.1, or no ALPN at all', async () => {
    const ca = await createTestCa();
    const leaf = await ca.sign({ dns: ['localhost'], ip: ['127.0.0.1'] });
    const refused: Array<string | false | null> = [];
    const { port, server } = await start({ '/test.Echo/Echo': echo }, { tls: { cert: leaf.certPem, key: leaf.keyPem }, observer: { alpnRefused: (p) => refused.push(p) } });
    const outcome = (ALPNProtocols: string[] | undefined) =>
      new Promise<{ error?: string; alpn?: string | false | null; data: number }>((resolve) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost', ...(ALPNProtocols ? { ALPNProtocols } : {}) });
        let data = 0;
        let alpn: string | false | null | undefined;
        socket.on('secureConnect', () => {
          alpn = socket.alpnProtocol;
          socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        });
        socket.on('data', (c: Buffer) => (data += c.length));
        socket.on('error', (err) => resolve({ error: err.message, data }));
        socket.on('close', () => resolve({ alpn, data }));
      });
    const http11 = await outcome(['http/1.1']);
    // Either the handshake fails (no_application_protocol) or the server hangs up before any HTTP/2 byte.
    expect(http11.data).toBe(0);
    expect(http11.error !== undefined || http11.alpn !== 'h2').toBe(true);
    const none = await outcome(undefined);
    expect(none.data).toBe(0);
    expect(refused).toContain(false);
    expect(server.connectionCount()).toBe(0);
  });

  it('passes request metadata to the handler', async () => {
    let seen: Record<string, unknown> = {};
    const { port } = await start({
      '/test.Echo/Meta': bufferRoute((message, headers) => {
        seen = { ...headers };
        return message;
      }),
    });
    const client = grpcClient(`127.0.0.1:${port}`);
    const metadata = new grpc.Metadata();
    metadata.set('x-tenant', 'acme');
    metadata.add('x-multi', 'one');
    metadata.add('x-multi', 'two');
    metadata.set('x-bin-bin', Buffer.from([0, 1, 2, 255]));
    await unary(client, '/test.Echo/Meta', Buffer.from('m'), metadata);
    expect(seen['x-tenant']).toBe('acme');
    expect(seen['x-multi']).toBe('one, two');
    expect(Buffer.from(String(seen['x-bin-bin']), 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(seen[':path']).toBe('/test.Echo/Meta');
    expect(seen['content-type']).toBe('application/grpc');
  });

  it('carries a 300 KB request and a 300 KB response through flow control both ways', async () => {
    const big = Buffer.alloc(300 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
    const { port } = await start({
      '/test.Echo/Echo': echo,
      '/test.Echo/Big': bufferRoute(() => big),
      '/test.Echo/Length': bufferRoute((message) => Buffer.from(String(message.length))),
    });
    const client = grpcClient(`127.0.0.1:${port}`);
    expect((await unary(client, '/test.Echo/Length', big)).toString()).toBe(String(big.length));
    expect((await unary(client, '/test.Echo/Big', Buffer.alloc(0))).equals(big)).toBe(true);
    expect((await unary(client, '/test.Echo/Echo', big)).equals(big)).toBe(true);
  });

  it('answers 200 concurrent calls on one connection', async () => {
    let running = 0;
    let maxRunning = 0;
    const { port, server } = await start({
      '/test.Echo/Slow': bufferRoute(async (message) => {
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        return message;
      }),
    });
    const client = grpcClient(`127.0.0.1:${port}`);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => unary(client, '/test.Echo/Slow', Buffer.from(`call ${i}`))));
    expect(replies.map((r) => r.toString())).toEqual(Array.from({ length: 200 }, (_, i) => `call ${i}`));
    expect(server.connectionCount()).toBe(1);
    expect(maxRunning).toBeGreaterThan(100);
  });

  it('answers an unknown method with UNIMPLEMENTED', async () => {
    const { port } = await start({ '/test.Echo/Echo': echo });
    const err = await unaryError(grpcClient(`127.0.0.1:${port}`), '/test.Echo/Nope', Buffer.from('x'));
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(err.details).toContain('/test.Echo/Nope');
  });

  it('turns a handler error, thrown or rejected, into the failure status', async () => {
    const { port } = await start({
      '/test.Echo/Throw': bufferRoute(() => {
        throw Object.assign(new Error('bad argument – ünïcode ✓'), { code: grpc.status.INVALID_ARGUMENT });
      }),
      '/test.Echo/Reject': bufferRoute(async () => {
        throw Object.assign(new Error('denied'), { code: grpc.status.PERMISSION_DENIED });
      }),
    });
    const client = grpcClient(`127.0.0.1:${port}`);
    const thrown = await unaryError(client, '/test.Echo/Throw', Buffer.from('x'));
    expect(thrown.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(thrown.details).toBe('bad argument – ünïcode ✓');
    const rejected = await unaryError(client, '/test.Echo/Reject', Buffer.from('x'));
    expect(rejected.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(rejected.details).toBe('denied');
    // The connection is still good after failures.
    await expect(unaryError(client, '/test.Echo/Throw', Buffer.from('x'))).resolves.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('answers a failure whose message has a lone surrogate, thrown or rejected', async () => {
    const { port } = await start({
      '/test.Echo/Throw': bufferRoute(() => {
        throw Object.assign(new Error('bad \ud800 input'), { code: grpc.status.INVALID_ARGUMENT });
      }),
      '/test.Echo/Reject': bufferRoute(async () => {
        throw Object.assign(new Error('bad \udc00 input 😀'), { code: grpc.status.INVALID_ARGUMENT });
      }),
    });
    const client = grpcClient(`127.0.0.1:${port}`);
    const thrown = await unaryError(client, '/test.Echo/Throw', Buffer.from('x'));
    expect([thrown.code, thrown.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'bad \ufffd input']);
    const rejected = await unaryError(client, '/test.Echo/Reject', Buffer.from('x'));
    expect([rejected.code, rejected.details]).toEqual([grpc.status.INVALID_ARGUMENT, 'bad \ufffd input 😀']);
  });

  // grpc-js decodes grpc-message with decodeURI: encodeURIComponent's `%3A` would stay escaped.
  it('shows a grpc-js client a failure message that has both a % and a colon unchanged', async () => {
    const { port } = await start({
      '/test.Echo/Throw': bufferRoute(() => {
        throw Object.assign(new Error('quota 100% used: retry later'), { code: grpc.status.RESOURCE_EXHAUSTED });
      }),
    });
    const err = await unaryError(grpcClient(`127.0.0.1:${port}`), '/test.Echo/Throw', Buffer.from('x'));
    expect(err.details).toBe('quota 100% used: retry later');
  });
});

describe('unary HTTP/2 server with node:http2', () => {
  it('answers a client whose HPACK table is smaller than the default (it needs a table size update first)', async () => {
    const { port } = await start({ '/test.Echo/Echo': echo });
    for (const headerTableSize of [0, 100]) {
      const session = http2Session(port, { headerTableSize });
      for (const text of ['first', 'second']) {
        const answer = await http2Request(session, { ':method': 'POST', ':path': '/test.Echo/Echo', 'content-type': 'application/grpc', te: 'trailers' }, grpcMessage(Buffer.from(text)));
        expect([answer.headers[':status'], answer.trailers['grpc-status'], answer.body]).toEqual([200, '0', grpcMessage(Buffer.from(text))]);
      }
    }
  });

  it('answers GET with 405 and a POST that is not gRPC with 415', async () => {
    const { port } = await start({ '/test.Echo/Echo': echo });
    const session = http2Session(port);
    const get = await http2Request(session, { ':method': 'GET', ':path': '/test.Echo/Echo' });
    expect(get.headers[':status']).toBe(405);
    const text = await http2Request(session, { ':method': 'POST', ':path': '/test.Echo/Echo', 'content-type': 'text/plain' }, Buffer.from('hello'));
    expect(text.headers[':status']).toBe(415);
    // The same session still makes gRPC calls.
    const ok = await http2Request(session, { ':method': 'POST', ':path': '/test.Echo/Echo', 'content-type': 'application/grpc', te: 'trailers' }, grpcMessage(Buffer.from('ok')));
    expect(ok.headers[':status']).toBe(200);
    expect(ok.body).toEqual(grpcMessage(Buffer.from('ok')));
    expect(ok.trailers['grpc-status']).toBe('0');
  });

  it('lets a call in progress finish on close(), after telling the client GOAWAY', async () => {
    const release = gate();
    const started = gate();
    let calls = 0;
    const { port, server } = await start({
      '/test.Echo/Slow': bufferRoute(async (message) => {
        calls++;
        started.open();
        await release.promise;
        return message;
      }),
    });
    const session = http2Session(port);
    const goaway = new Promise<number>((resolve) => session.on('goaway', (code) => resolve(code)));
    const call = http2Request(session, { ':method': 'POST', ':path': '/test.Echo/Slow', 'content-type': 'application/grpc', te: 'trailers' }, grpcMessage(Buffer.from('slow')));
    const grpcCall = unary(grpcClient(`127.0.0.1:${port}`), '/test.Echo/Slow', Buffer.from('grpc-js slow'));
    await started.promise;
    await expect.poll(() => calls).toBe(2);
    let closed = false;
    const closing = server.close(10_000).then(() => (closed = true));
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    // New connections are no longer accepted.
    await expect(new Promise((resolve, reject) => netConnect(port, '127.0.0.1').on('connect', resolve).on('error', reject))).rejects.toThrow(/ECONNREFUSED/);
    expect(closed).toBe(false);
    release.open();
    const answer = await call;
    expect(answer.headers[':status']).toBe(200);
    expect(answer.body).toEqual(grpcMessage(Buffer.from('slow')));
    expect(answer.trailers['grpc-status']).toBe('0');
    expect((await grpcCall).toString()).toBe('grpc-js slow');
    await closing;
    expect(server.connectionCount()).toBe(0);
  });
});

describe('unary HTTP/2 server admission', () => {
  it('holds a call until admission resolves, and the client cannot send beyond the 65,535-byte stream window meanwhile', async () => {
    const admit = gate();
    let handled = 0;
    let gated = true;
    const { port } = await start({
      '/test.Echo/Gated': bufferRoute(
        (message) => {
          handled++;
          return Buffer.from(`got ${message.length}`);
        },
        { admission: () => (gated ? admit.promise : undefined) },
      ),
    });
    const raw = await RawClient.open(port);
    const body = grpcMessage(Buffer.alloc(100_000, 0x61));
    raw.headers(1, requestFields('/test.Echo/Gated'));
    raw.dataChunked(1, body.subarray(0, 65_535));
    await raw.barrier();
    expect(handled).toBe(0);
    const streamFrames = () => raw.frames.filter((f) => f.streamId === 1);
    expect(streamFrames()).toEqual([]); // no WINDOW_UPDATE, no answer, no reset while parked

    gated = false;
    admit.open();
    const credit = await raw.waitFor((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1);
    expect(credit.payload.readUInt32BE(0)).toBe(65_535);
    raw.dataChunked(1, body.subarray(65_535), true);
    const answer = await raw.answer(1);
    expect(answer.headers?.[':status']).toBe('200');
    expect(answer.data).toEqual(grpcMessage(Buffer.from('got 100000')));
    expect(answer.trailers?.['grpc-status']).toBe('0');
    expect(handled).toBe(1);
    raw.close();
  });

  it('does not run the handler of a call held by admission, and releases it when the client resets it', async () => {
    const admit = gate();
    let handled = 0;
    const { port } = await start(
      { '/test.Echo/Gated': bufferRoute(() => Buffer.from(String(++handled)), { admission: () => admit.promise }) },
      { limits: { maxConcurrentStreams: 1 } },
    );
    const raw = await RawClient.open(port);
    raw.call(1, '/test.Echo/Gated', Buffer.from('a'));
    await raw.barrier();
    raw.call(3, '/test.Echo/Gated', Buffer.from('b'));
    expect(await raw.rstCode(3)).toBe(7); // REFUSED_STREAM: the held call has the only slot
    raw.rst(1, 8);
    await raw.barrier();
    raw.call(5, '/test.Echo/Gated', Buffer.from('c'));
    await raw.barrier();
    expect(raw.frames.filter((f) => f.streamId === 5)).toEqual([]); // admitted to the slot, parked
    admit.open();
    const answer = await raw.answer(5);
    expect(answer.data).toEqual(grpcMessage(Buffer.from('1')));
    expect(handled).toBe(1); // the reset call never ran
    raw.close();
  });
});
