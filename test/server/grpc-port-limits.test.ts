/**
 * The gRPC port under hostile or careless clients: refused SDS/ADS streams are reset and released
 * (50,000 unauthenticated streams used to hold 450 MB), streams per connection are capped, a burst
 * of refusals logs a bounded number of lines, and idle connections are closed.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { createCaCapability } from '../../src/ca/index.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import type { ServeOptions } from '../../src/server/capability.ts';
import { createSdsCapability } from '../../src/sds/index.ts';
import { createXdsCapability } from '../../src/xds/index.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

const SDS = '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets';
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const HEALTH_WATCH = '/grpc.health.v1.Health/Watch';
const CHECK = '/envoy.service.auth.v3.Authorization/Check';

const running: Meshward[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const dirs: string[] = [];
afterEach(async () => {
  sessions.splice(0).forEach((s) => s.destroy());
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

interface Started { mw: Meshward; registry: Registry; lines: { msg: string; count?: number }[] }

async function start(options: Partial<ServeOptions> = {}): Promise<Started> {
  const lines: { msg: string; count?: number }[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: cluster.local') });
  const dataDir = tempDir('mw-grpc-limits-');
  dirs.push(configDir, dataDir);
  const registry = createRegistry();
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...options },
    { logger: pino({ level: 'info' }, sink), registry, capabilities: [createCaCapability, createSdsCapability, createAuthzCapability, (ctx) => createXdsCapability(ctx)] },
  );
  running.push(mw);
  await mw.start();
  return { mw, registry, lines };
}

function connect(mw: Meshward): http2.ClientHttp2Session {
  const session = http2.connect(`http://${mw.addresses.grpc}`);
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

/** One gRPC message frame around `payload`. */
function frame(payload: Buffer): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, 5);
  return out;
}

interface Opened { stream: http2.ClientHttp2Stream; status: Promise<string | undefined>; closed: Promise<number> }

/** Opens a stream on `path`, sends one (empty) message and leaves the request side open, as a client that never hangs up. */
function openStream(session: http2.ClientHttp2Session, path: string, body = frame(Buffer.alloc(0))): Opened {
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => {});
  stream.on('data', () => {});
  const status = new Promise<string | undefined>((resolve) => {
    stream.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
    stream.on('trailers', (h) => resolve(String(h['grpc-status'])));
    stream.on('close', () => resolve(undefined));
  });
  const closed = new Promise<number>((resolve) => stream.on('close', () => resolve(stream.rstCode ?? -1)));
  stream.write(body);
  return { stream, status, closed };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

const within = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

async function eventually(read: () => Promise<number>, expected: number, ms = 5000): Promise<number> {
  const until = Date.now() + ms;
  let value = await read();
  while (value !== expected && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    value = await read();
  }
  return value;
}

describe('gRPC port limits', () => {
  it.each([['SDS', SDS], ['ADS', ADS]])('answers unauthenticated %s streams UNAUTHENTICATED, then resets and releases them although the client never hangs up', async (_name, path) => {
    const { mw, registry } = await start();
    const session = connect(mw);
    const opened = Array.from({ length: 200 }, () => openStream(session, path));
    expect(await within(Promise.all(opened.map((o) => o.status)), 10_000, 'statuses')).toEqual(opened.map(() => '16'));
    // NO_ERROR: "the response is complete, stop sending" (RFC 9113 §8.1), after the status.
    expect(await within(Promise.all(opened.map((o) => o.closed)), 10_000, 'resets')).toEqual(opened.map(() => http2.constants.NGHTTP2_NO_ERROR));
    expect(await eventually(() => metric(registry, 'meshward_grpc_open_streams'), 0)).toBe(0);
    expect(session.closed).toBe(false);
  });

  it('logs a burst of refused streams as a bounded number of lines, and counts each', async () => {
    const { mw, registry, lines } = await start();
    const session = connect(mw);
    const opened = Array.from({ length: 300 }, (_, i) => openStream(session, i % 2 ? SDS : ADS));
    await within(Promise.all(opened.map((o) => o.closed)), 10_000, 'resets');
    expect(await metric(registry, 'meshward_sds_refused_total', { code: 'UNAUTHENTICATED' })).toBe(150);
    expect(await metric(registry, 'meshward_xds_rejected_streams_total', { code: 'UNAUTHENTICATED' })).toBe(150);
    const refusalLines = lines.filter((l) => /refused/.test(l.msg));
    expect(refusalLines.length).toBeLessThanOrEqual(4);
    expect(refusalLines.length).toBeGreaterThanOrEqual(2);
  });

  it('caps concurrent streams per connection: the client is told the limit and streams beyond it are refused', async () => {
    const { mw } = await start({ grpcMaxConcurrentStreams: 10 });
    // A client that does not wait for the server's SETTINGS: all 14 streams leave in the first flight.
    const session = http2.connect(`http://${mw.addresses.grpc}`, { peerMaxConcurrentStreams: 100 });
    session.on('error', () => {});
    sessions.push(session);
    const settings = new Promise((r) => session.once('remoteSettings', r));
    // Health Watch streams stay open after their answer: 10 are served, the rest refused.
    const request = Buffer.from([0x0a, 0x00]); // HealthCheckRequest{service: ""}
    const opened = Array.from({ length: 14 }, () => openStream(session, HEALTH_WATCH, frame(request)));
    for (const o of opened) o.stream.end();
    await settings;
    expect(session.remoteSettings.maxConcurrentStreams).toBe(10);
    const refused = await within(Promise.all(opened.slice(10).map((o) => o.closed)), 10_000, 'refused');
    expect(refused).toEqual(opened.slice(10).map(() => http2.constants.NGHTTP2_REFUSED_STREAM));
    await within(Promise.all(opened.slice(0, 10).map((o) => new Promise((r) => o.stream.once('data', r)))), 10_000, 'served');
    expect(opened.slice(0, 10).every((o) => !o.stream.closed)).toBe(true);
  });

  it('closes a connection that has had no stream open for the idle timeout, with GOAWAY', async () => {
    const { mw } = await start({ grpcIdleTimeoutMs: 300 });
    const session = connect(mw);
    const goaway = new Promise<number>((resolve) => session.on('goaway', (code) => resolve(code)));
    await new Promise((r) => session.once('remoteSettings', r));
    expect(await within(goaway, 5000, 'goaway')).toBe(http2.constants.NGHTTP2_NO_ERROR);
  });

  it('closes a TCP connection that never speaks HTTP/2 after the idle timeout', async () => {
    const { mw } = await start({ grpcIdleTimeoutMs: 300 });
    const [host, port] = mw.addresses.grpc.split(':');
    const socket = net.connect(Number(port), host);
    socket.on('error', () => {});
    socket.on('data', () => {});
    const closed = new Promise((r) => socket.once('close', r));
    await within(closed, 5000, 'close');
  });

  it('keeps a connection busy with fast-path Checks open past the idle timeout', async () => {
    const { mw } = await start({ grpcIdleTimeoutMs: 300 });
    expect(mw.grpcFastPaths).toContain(CHECK);
    const session = connect(mw);
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    const started = Date.now();
    while (Date.now() - started < 1200) {
      const call = openStream(session, CHECK); // an empty CheckRequest: answered, whatever the answer
      call.stream.end();
      expect(await call.status).toBeDefined();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(goaway).toBe(false);
  });
});
