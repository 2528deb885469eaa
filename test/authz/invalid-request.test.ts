/** CheckRequests that are not CheckRequests: garbage bytes in a well-formed gRPC frame. */
import http2 from 'node:http2';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { ORDERS_FROM_WEB, SERVICES } from './helpers.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(grpcFastPath: boolean) {
  const lines: { msg: string; count?: number }[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const configDir = writeConfigDir({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
  const dataDir = tempDir('mw-invalid-');
  dirs.push(configDir, dataDir);
  const registry = createRegistry();
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, grpcFastPath },
    { logger: pino({ level: 'info' }, sink), registry, clock: new FakeClock(Date.now()), capabilities: [createAuthzCapability] },
  );
  running.push(mw);
  await mw.start();
  return { mw, lines, registry };
}

function grpcFrame(payload: Buffer, compressed = false): Buffer {
  const frame = Buffer.concat([Buffer.from([compressed ? 1 : 0]), Buffer.alloc(4), payload]);
  frame.writeUInt32BE(payload.length, 1);
  return frame;
}

/** Sends `body` (one length-prefixed gRPC message of `payload` by default) to Check; resolves the grpc-status and message. */
function rawCheck(session: http2.ClientHttp2Session, payload: Buffer, body = grpcFrame(payload), extraHeaders: Record<string, string> = {}): Promise<{ status: string; message: string }> {
  const frame = body;
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (headers = { ...headers, ...t }));
    req.on('data', () => {});
    req.on('end', () => resolve({ status: String(headers['grpc-status']), message: decodeURIComponent(String(headers['grpc-message'] ?? '')) }));
    req.on('error', reject);
    req.end(frame);
  });
}

async function invalidCount(registry: Registry, reason = 'undecodable'): Promise<number> {
  const metric = await registry.getSingleMetric('meshward_authz_invalid_requests_total')?.get();
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('an undecodable CheckRequest', () => {
  it.each([true, false])('is answered INVALID_ARGUMENT, counted, and logged once per interval, not once per request (fast path %s)', async (fastPath) => {
    const { mw, lines, registry } = await start(fastPath);
    expect(mw.grpcFastPaths.length > 0).toBe(fastPath);
    const session = http2.connect(`http://${mw.addresses.grpc}`);
    try {
      // Field 1 with wire type 7 (no such type), then bytes that run past the end.
      const garbage = Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x7f, 0x01]);
      const answers = await Promise.all(Array.from({ length: 40 }, () => rawCheck(session, garbage)));
      for (const a of answers) expect(a.status).toBe('3');
      expect(answers[0]!.message).toMatch(/CheckRequest could not be decoded/);
      expect(await invalidCount(registry)).toBe(40);
      const logged = lines.filter((l) => l.msg === 'invalid CheckRequests refused before any decision');
      expect(logged).toHaveLength(1);
      expect(logged[0]!.count).toBe(1);
    } finally {
      session.close();
    }
  });
});

describe('a Check call whose gRPC message is malformed (fast path)', () => {
  it('is refused with a status that says what is wrong, counted by reason and logged once per interval, while a well-formed call is still decided', async () => {
    const { mw, lines, registry } = await start(true);
    const session = http2.connect(`http://${mw.addresses.grpc}`);
    try {
      const truncated = grpcFrame(Buffer.alloc(10)).subarray(0, 8);
      const two = Buffer.concat([grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.alloc(0))]);
      const tooLarge = grpcFrame(Buffer.alloc(4 * 1024 * 1024 + 1));
      const answers = {
        empty: await rawCheck(session, Buffer.alloc(0), Buffer.alloc(0)),
        truncated: await rawCheck(session, Buffer.alloc(0), truncated),
        two: await rawCheck(session, Buffer.alloc(0), two),
        snappy: await rawCheck(session, Buffer.alloc(0), grpcFrame(Buffer.from('x'), true), { 'grpc-encoding': 'snappy' }),
        notGzip: await rawCheck(session, Buffer.alloc(0), grpcFrame(Buffer.from('not gzip'), true), { 'grpc-encoding': 'gzip' }),
        tooLarge: await rawCheck(session, Buffer.alloc(0), tooLarge),
        wellFormed: await rawCheck(session, Buffer.alloc(0)),
      };
      expect(answers.empty).toEqual({ status: '13', message: 'Unary call ended without a request message' });
      expect(answers.truncated).toEqual({ status: '13', message: 'Truncated gRPC message frame' });
      expect(answers.two).toEqual({ status: '13', message: 'Unary call carried more than one request message' });
      expect(answers.snappy).toEqual({ status: '12', message: 'Received message compressed with unsupported encoding "snappy"' });
      expect(answers.notGzip.status).toBe('13');
      expect(answers.notGzip.message).toMatch(/^Could not decompress the request/);
      expect(answers.tooLarge.status).toBe('8');
      // An empty CheckRequest decodes: it is decided (gRPC OK, the decision in the CheckResponse), not refused.
      expect(answers.wellFormed.status).toBe('0');
      expect([await invalidCount(registry, 'framing'), await invalidCount(registry, 'encoding'), await invalidCount(registry, 'too_large')]).toEqual([3, 2, 1]);
      expect(lines.filter((l) => l.msg === 'invalid CheckRequests refused before any decision')).toHaveLength(1);
    } finally {
      session.close();
    }
  });
});
