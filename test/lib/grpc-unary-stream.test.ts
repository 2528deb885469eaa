import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { credentials, type Client, makeGenericClientConstructor, Metadata, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import { methodTypesOf, routeGrpcStreams } from '../../src/lib/grpc-stream-router.ts';
import { encodeGrpcMessage, GrpcCode, parseGrpcTimeout, serveUnary, type UnaryMethod } from '../../src/lib/grpc-unary-stream.ts';

// A tiny service with Buffer messages: the requests are UTF-8 text, so tests can choose what the
// handler sees and how the (de)serializers fail.
const ECHO = '/test.Echo/Say';
const OTHER = '/test.Echo/Other';
const service = {
  Say: { path: ECHO, requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
  Other: { path: OTHER, requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
};
const EchoClient = makeGenericClientConstructor(service, 'Echo');

interface Env { port: number; server: Server; client: Client; routed: string[]; grpcJsCalls: string[] }
const open: Env[] = [];

async function start(method: Partial<UnaryMethod<string, string>> = {}, clientOptions: object = {}): Promise<Env> {
  const routed: string[] = [];
  const grpcJsCalls: string[] = [];
  const server = new Server();
  const viaGrpcJs = (name: string) => (call: { request: Buffer }, cb: (e: null, r: Buffer) => void) => {
    grpcJsCalls.push(name);
    cb(null, Buffer.from(`grpc-js ${call.request.toString()}`));
  };
  server.addService(service, { Say: viaGrpcJs('Say'), Other: viaGrpcJs('Other') });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const full: UnaryMethod<string, string> = {
    deserialize: (b) => {
      const text = b.toString();
      if (text === 'undecodable') throw new Error('not a message');
      return text;
    },
    serialize: (s) => Buffer.from(s),
    handle: (text) => {
      routed.push(text);
      return `fast ${text}`;
    },
    failure: (err) => ({ code: GrpcCode.INTERNAL, message: (err as Error).message }),
    ...method,
  };
  const installed = routeGrpcStreams(server, new Map([[ECHO, (stream, headers) => serveUnary(full, stream, headers)]]));
  expect(installed).toBe(1);
  const client = new EchoClient(`127.0.0.1:${port}`, credentials.createInsecure(), clientOptions);
  const env = { port, server, client, routed, grpcJsCalls };
  open.push(env);
  return env;
}

function call(env: Env, name: 'Say' | 'Other', text: string | Buffer, options: { deadlineMs?: number; onCall?: (c: { cancel(): void }) => void } = {}): Promise<{ body: string }> {
  return new Promise((resolve, reject) => {
    const callOptions = options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {};
    const c = (env.client as unknown as Record<string, (r: Buffer, m: Metadata, o: object, cb: (e: ServiceError | null, r?: Buffer) => void) => { cancel(): void }>)[name]!(
      Buffer.isBuffer(text) ? text : Buffer.from(text), new Metadata(), callOptions, (err, res) => (err ? reject(err) : resolve({ body: res!.toString() })));
    options.onCall?.(c);
  });
}

/** A raw HTTP/2 request to the server: headers and body exactly as given. */
function rawRequest(port: number, headers: Record<string, string>, body: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': ECHO, te: 'trailers', ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { responseHeaders = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      session.close();
      resolve({ headers: responseHeaders, trailers, data: Buffer.concat(chunks) });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function frame(message: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

afterEach(async () => {
  for (const env of open.splice(0)) {
    env.client.close();
    env.server.forceShutdown();
  }
});

describe('serving a unary gRPC method on the HTTP/2 stream', () => {
  it('answers a routed method itself and leaves every other method to grpc-js', async () => {
    const env = await start();
    expect(await call(env, 'Say', 'hello')).toEqual({ body: 'fast hello' });
    expect(await call(env, 'Other', 'there')).toEqual({ body: 'grpc-js there' });
    expect(env.routed).toEqual(['hello']);
    expect(env.grpcJsCalls).toEqual(['Other']);
  });

  it('answers an asynchronous handler once it resolves', async () => {
    const env = await start({ handle: async (t) => { await new Promise((r) => setTimeout(r, 5)); return `later ${t}`; } });
    expect(await call(env, 'Say', 'x')).toEqual({ body: 'later x' });
  });

  it('turns a thrown error into the status, message and trailers the method maps it to', async () => {
    const env = await start({
      handle: () => { throw new Error('pipeline not ready'); },
      failure: (err) => ({ code: GrpcCode.RESOURCE_EXHAUSTED + 6, message: `${(err as Error).message} – bitte später ✓`, trailers: { 'meshward-error-code': 'NOT_READY' } }),
    });
    const err = await call(env, 'Say', 'x').catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.UNAVAILABLE);
    expect((err as ServiceError).details).toBe('pipeline not ready – bitte später ✓');
    expect((err as ServiceError).metadata.get('meshward-error-code')).toEqual(['NOT_READY']);
  });

  it('turns a rejected promise into an error status', async () => {
    const env = await start({ handle: () => Promise.reject(new Error('redis down')) });
    const err = await call(env, 'Say', 'x').catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.INTERNAL);
    expect((err as ServiceError).details).toBe('redis down');
  });

  it('answers DEADLINE_EXCEEDED when an asynchronous handler outlives the grpc-timeout', async () => {
    let finished = false;
    const env = await start({ handle: async () => { await new Promise((r) => setTimeout(r, 400)); finished = true; return 'too late'; } });
    const err = await call(env, 'Say', 'x', { deadlineMs: 50 }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 450));
    expect(finished).toBe(true); // the late result is dropped without an error on the closed stream
    expect(await call(env, 'Other', 'still up')).toEqual({ body: 'grpc-js still up' });
  });

  it('decodes a gzip-compressed request', async () => {
    const env = await start({}, { 'grpc.default_compression_algorithm': 2 });
    expect(await call(env, 'Say', 'a'.repeat(10_000))).toEqual({ body: `fast ${'a'.repeat(10_000)}` });
  });

  it('refuses a message compressed with an encoding it does not know', async () => {
    const env = await start();
    const res = await rawRequest(env.port, { 'content-type': 'application/grpc', 'grpc-encoding': 'snappy' }, frame(Buffer.from('x'), true));
    expect(res.headers['grpc-status']).toBe(String(status.UNIMPLEMENTED));
    expect(decodeURIComponent(String(res.headers['grpc-message']))).toContain('snappy');
  });

  it('refuses a request larger than the receive limit with RESOURCE_EXHAUSTED', async () => {
    const env = await start({ maxReceiveBytes: 100 });
    const err = await call(env, 'Say', 'b'.repeat(101)).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect(await call(env, 'Say', 'b'.repeat(100))).toEqual({ body: `fast ${'b'.repeat(100)}` });
  });

  it('answers INTERNAL when the request does not deserialize', async () => {
    const env = await start();
    const err = await call(env, 'Say', 'undecodable').catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.INTERNAL);
    expect((err as ServiceError).details).toContain('not a message');
    expect(env.routed).toEqual([]);
  });

  it('answers 415 to a request that is not gRPC', async () => {
    const env = await start();
    const res = await rawRequest(env.port, { 'content-type': 'application/json' }, Buffer.from('{}'));
    expect(res.headers[':status']).toBe(415);
    expect(env.routed).toEqual([]);
  });

  it('answers INTERNAL to a call without a message, a truncated frame or two messages', async () => {
    const env = await start();
    const grpc = { 'content-type': 'application/grpc' };
    const empty = await rawRequest(env.port, grpc, Buffer.alloc(0));
    const truncated = await rawRequest(env.port, grpc, frame(Buffer.from('hello')).subarray(0, 8));
    const two = await rawRequest(env.port, grpc, Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))]));
    for (const res of [empty, truncated, two]) {
      expect(res.headers[':status']).toBe(200);
      expect(res.headers['grpc-status']).toBe(String(status.INTERNAL));
    }
    expect(decodeURIComponent(String(two.headers['grpc-message']))).toContain('more than one');
    expect(env.routed).toEqual([]);
  });

  it('sends the message then OK in trailers, as grpc-js does', async () => {
    const env = await start();
    const res = await rawRequest(env.port, { 'content-type': 'application/grpc' }, frame(Buffer.from('hi')));
    expect(res.headers[':status']).toBe(200);
    expect(res.headers['content-type']).toBe('application/grpc+proto');
    expect(res.data.equals(frame(Buffer.from('fast hi')))).toBe(true);
    expect(res.trailers['grpc-status']).toBe('0');
  });

  it('survives a client that cancels while the handler is still working', async () => {
    let resolved = false;
    const env = await start({ handle: async (t) => { await new Promise((r) => setTimeout(r, 50)); resolved = true; return t; } });
    const err = await call(env, 'Say', 'x', { onCall: (c) => setTimeout(() => c.cancel(), 10) }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.CANCELLED);
    await new Promise((r) => setTimeout(r, 80));
    expect(resolved).toBe(true);
    expect(await call(env, 'Say', 'after')).toEqual({ body: 'after' });
  });

  it('changes nothing when grpc-js internals are not the expected shape', () => {
    const notGrpcJs = new EventEmitter() as unknown as Server;
    expect(routeGrpcStreams(notGrpcJs, new Map([[ECHO, () => {}]]))).toBe(0);
    expect(methodTypesOf(notGrpcJs)).toBeUndefined();
  });

  it('reads the type of each method the installed grpc-js has registered', async () => {
    const env = await start();
    const typeOf = methodTypesOf(env.server);
    expect(typeOf?.(ECHO)).toBe('unary');
    expect(typeOf?.('/test.Echo/Missing')).toBeUndefined();
  });
});

describe('gRPC header values', () => {
  it('reads grpc-timeout in every unit and ignores malformed values', () => {
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('123456789S')).toBeUndefined();
    expect(parseGrpcTimeout('5s')).toBeUndefined();
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
  });

  it('percent-encodes grpc-message only when it must', () => {
    expect(encodeGrpcMessage('access denied')).toBe('access denied');
    expect(decodeURIComponent(encodeGrpcMessage('100% sure'))).toBe('100% sure');
    expect(encodeGrpcMessage('100% sure')).not.toContain('% ');
    expect(decodeURIComponent(encodeGrpcMessage('zürich\nline'))).toBe('zürich\nline');
  });

  it('encodes grpc-message so that grpc-js clients (decodeURI) read it back unchanged, lone surrogates included', () => {
    // grpc-js decodes with decodeURI, which leaves %3A or %2F as they are: those must not be escaped.
    expect(decodeURI(encodeGrpcMessage('quota 100% used: see /v1/quotas, a=b'))).toBe('quota 100% used: see /v1/quotas, a=b');
    expect(decodeURI(encodeGrpcMessage('zürich: 😀'))).toBe('zürich: 😀');
    expect(decodeURI(encodeGrpcMessage('bad \ud800 input'))).toBe('bad \ufffd input');
  });
});
