/**
 * `--grpc-max-connections`: each gRPC port (the gRPC port and the unary port, counted apart)
 * holds at most that many open connections; one past it is closed as soon as it is accepted,
 * counted and logged, and a connection is accepted again once one has closed.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuditCapability } from '../../src/audit/index.ts';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { resolveServeOptions } from '../../src/cli/options.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { type CheckResponse, checkRequest, ORDERS_FROM_WEB, SERVICES } from '../authz/helpers.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

const running: Meshward[] = [];
const sockets: net.Socket[] = [];
const dirs: string[] = [];
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(grpcMaxConnections: number): Promise<{ mw: Meshward; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const configDir = writeConfigDir({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
  const dataDir = tempDir('mw-conn-cap-');
  dirs.push(configDir, dataDir);
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', unaryGrpcAddress: '127.0.0.1:0', watchConfig: false, grpcMaxConnections },
    { logger: pino({ level: 'info' }, sink), registry: createRegistry(), capabilities: [createAuditCapability, createAuthzCapability] },
  );
  running.push(mw);
  await mw.start();
  return { mw, lines };
}

type CheckClient = { Check(r: object, o: { deadline: number }, cb: (err: ServiceError | null, res: CheckResponse) => void): void; close(): void };

/** One Check on a fresh channel (a fresh connection), with a 3 s deadline. */
function check(address: string): Promise<CheckResponse> {
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(address, credentials.createInsecure()) as unknown as CheckClient;
  return new Promise((resolve, reject) => client.Check(checkRequest(), { deadline: Date.now() + 3000 }, (err, res) => { client.close(); return err ? reject(err) : resolve(res); }));
}

/** A TCP connection that sends nothing; resolves once connected. */
function hold(address: string): Promise<net.Socket> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => resolve(socket));
    socket.on('error', reject);
    sockets.push(socket);
  });
}

/** Resolves true when the server closes `socket` within `ms`, false when it is still open then. */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => { clearTimeout(timer); resolve(true); });
    socket.resume();
  });
}

async function metric(mw: Meshward, pattern: RegExp): Promise<number> {
  const m = pattern.exec(await mw.registry.metrics());
  return m ? Number(m[1]) : 0;
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const OPEN = { grpc: /^meshward_grpc_connections (\d+)$/m, unary: /^meshward_unary_grpc_connections (\d+)$/m };
const REFUSED = { grpc: /^meshward_grpc_connections_refused_total\{port="grpc"\} (\d+)$/m, unary: /^meshward_grpc_connections_refused_total\{port="unary"\} (\d+)$/m };

describe('the connection cap of each gRPC port', () => {
  for (const port of ['grpc', 'unary'] as const) {
    it(`closes a connection past --grpc-max-connections on the ${port} port, answers again once one has closed`, async () => {
      const { mw, lines } = await start(2);
      const address = port === 'grpc' ? mw.addresses.grpc : mw.addresses.unary!;
      // Below the cap: a Check is answered.
      expect((await check(address)).status.code).toBe(0);
      await until(async () => (await metric(mw, OPEN[port])) === 0, 'the first client to close');

      const held = [await hold(address), await hold(address)];
      await until(async () => (await metric(mw, OPEN[port])) === 2, 'two open connections');
      const third = await hold(address);
      expect(await closedWithin(third, 2000)).toBe(true);
      await expect(check(address)).rejects.toMatchObject({ code: expect.any(Number) });
      expect(await metric(mw, REFUSED[port])).toBeGreaterThanOrEqual(2);
      expect(await closedWithin(held[0]!, 100)).toBe(false); // the connections held are kept
      expect(lines.some((l) => String(l.msg).includes('--grpc-max-connections') && l.port === port && l.maxConnections === 2)).toBe(true);

      // The other port counts its own connections: the cap of this one does not refuse there.
      const other = port === 'grpc' ? mw.addresses.unary! : mw.addresses.grpc;
      expect((await check(other)).status.code).toBe(0);

      held[0]!.destroy();
      await until(async () => (await metric(mw, OPEN[port])) === 1, 'a held connection to close');
      expect((await check(address)).status.code).toBe(0);
    });
  }

  it('refuses with UNAVAILABLE from a grpc-js client while the port is full', async () => {
    const { mw } = await start(1);
    await hold(mw.addresses.unary!);
    await until(async () => (await metric(mw, OPEN.unary)) === 1, 'one open connection');
    const err = await check(mw.addresses.unary!).then(() => undefined, (e: ServiceError) => e);
    expect(err?.code).toBe(status.UNAVAILABLE);
  });
});

describe('--grpc-max-connections', () => {
  it('reads the flag before the environment, defaults to unset (10,000 in serve), refuses what is not a positive integer naming the flag', () => {
    expect(resolveServeOptions({ 'grpc-max-connections': '50' }, { MESHWARD_GRPC_MAX_CONNECTIONS: '9' })).toMatchObject({ grpcMaxConnections: 50 });
    expect(resolveServeOptions({}, { MESHWARD_GRPC_MAX_CONNECTIONS: '9' })).toMatchObject({ grpcMaxConnections: 9 });
    expect(resolveServeOptions({}, {}).grpcMaxConnections).toBeUndefined();
    for (const bad of ['0', '-1', '1.5', 'many']) expect(() => resolveServeOptions({ 'grpc-max-connections': bad }, {})).toThrow(/--grpc-max-connections/);
  });
});
