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

/** Sends one length-prefixed gRPC message of `payload` to Check; resolves the grpc-status and message. */
function rawCheck(session: http2.ClientHttp2Session, payload: Buffer): Promise<{ status: string; message: string }> {
  const frame = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), payload]);
  frame.writeUInt32BE(payload.length, 1);
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers' });
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (headers = { ...headers, ...t }));
    req.on('data', () => {});
    req.on('end', () => resolve({ status: String(headers['grpc-status']), message: decodeURIComponent(String(headers['grpc-message'] ?? '')) }));
    req.on('error', reject);
    req.end(frame);
  });
}

async function invalidCount(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('meshward_authz_invalid_requests_total')?.get();
  return metric?.values.find((v) => v.labels.reason === 'undecodable')?.value ?? 0;
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
      const logged = lines.filter((l) => l.msg === 'invalid CheckRequests answered INVALID_ARGUMENT');
      expect(logged).toHaveLength(1);
      expect(logged[0]!.count).toBe(1);
    } finally {
      session.close();
    }
  });
});
