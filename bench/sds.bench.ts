/**
 * SDS at fleet scale: N concurrent StreamSecrets streams (default 10,000) held by one meshward
 * process, each authenticated with a bootstrap token and subscribed to `default` + `ROOTCA`.
 * Measures, in the server process: memory per stream; and from the clients: time to open every
 * stream (first response), and time from a forced root rotation (POST /v1/ca/rotate) to the last
 * stream's ROOTCA push. Baseline in the same run: a bare grpc-js server whose StreamSecrets
 * handler answers a fixed, pre-encoded response (no auth, no CA) and broadcasts it on command.
 *
 *   node --expose-gc --import tsx bench/sds.bench.ts      (SDS_BENCH_STREAMS=10000, SDS_BENCH_IDENTITIES=1000)
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Client, credentials, Metadata, Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';

const STREAMS = Number(process.env.SDS_BENCH_STREAMS ?? 10_000);
const IDENTITIES = Number(process.env.SDS_BENCH_IDENTITIES ?? 1000);
const CHANNELS = 20;
const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const DEADLINE = Date.now() + 150_000;

type ToChild = { cmd: 'mem' } | { cmd: 'broadcast' } | { cmd: 'exit' };
type FromChild = { ready: { grpc: string; http: string; dataDir: string; adminToken?: string } } | { mem: NodeJS.MemoryUsage } | { broadcasted: true };

// ---------------- server process ----------------

async function serverMain(mode: 'meshward' | 'baseline'): Promise<void> {
  const send = (m: FromChild) => process.send!(m);
  const gcMem = () => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage();
  };
  if (mode === 'baseline') {
    const { envoyServiceDefinition, envoyMessageType } = await import('../src/lib/protos.ts');
    const secret = envoyMessageType('envoy.extensions.transport_sockets.tls.v3.Secret').serialize({ name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: Buffer.alloc(1200, 65) } } });
    const calls = new Set<ServerDuplexStream<unknown, unknown>>();
    const response = () => ({ version_info: String(Date.now()), resources: [{ type_url: SECRET_TYPE, value: secret }], type_url: SECRET_TYPE, nonce: String(Math.random()) });
    const server = new Server({ 'grpc.max_concurrent_streams': 100_000 });
    server.addService(envoyServiceDefinition('envoy.service.secret.v3.SecretDiscoveryService'), {
      StreamSecrets(call: ServerDuplexStream<{ response_nonce?: string }, unknown>) {
        calls.add(call);
        call.on('data', (req: { response_nonce?: string }) => {
          if (!req.response_nonce) call.write(response());
        });
        call.on('end', () => { calls.delete(call); call.end(); });
        call.on('cancelled', () => calls.delete(call));
      },
      DeltaSecrets() {},
      FetchSecrets() {},
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    process.on('message', (m: ToChild) => {
      if (m.cmd === 'mem') send({ mem: gcMem() });
      if (m.cmd === 'broadcast') {
        for (const c of calls) c.write(response());
        send({ broadcasted: true });
      }
      if (m.cmd === 'exit') {
        server.forceShutdown();
        process.exit(0);
      }
    });
    send({ ready: { grpc: `127.0.0.1:${port}`, http: '', dataDir: '' } });
    return;
  }
  const { createMeshward } = await import('../src/meshward.ts');
  const { createCaCapability } = await import('../src/ca/index.ts');
  const { createSdsCapability } = await import('../src/sds/index.ts');
  const { createLogger } = await import('../src/lib/logger.ts');
  const { writeFileSync } = await import('node:fs');
  const root = mkdtempSync(path.join(os.tmpdir(), 'mw-sds-bench-'));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  (await import('node:fs')).mkdirSync(configDir);
  writeFileSync(path.join(configDir, 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata:\n  name: mesh\nspec:\n  trustDomain: bench.local\n');
  const meshward = await createMeshward({ configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: createLogger({ level: 'error' }), capabilities: [createCaCapability, createSdsCapability] });
  await meshward.start();
  const adminToken = meshward.apiAuth.createToken('bench', 'admin');
  process.on('message', async (m: ToChild) => {
    if (m.cmd === 'mem') send({ mem: gcMem() });
    if (m.cmd === 'exit') {
      await Promise.race([meshward.stop(), new Promise((r) => setTimeout(r, 3000))]);
      rmSync(root, { recursive: true, force: true });
      process.exit(0);
    }
  });
  send({ ready: { ...meshward.addresses, dataDir, adminToken } });
}

// ---------------- client (parent) process ----------------

interface Child {
  request<T extends FromChild>(m: ToChild, key: string): Promise<T>;
  ready: Extract<FromChild, { ready: unknown }>['ready'];
  stop(): Promise<void>;
}

async function startChild(mode: 'meshward' | 'baseline'): Promise<Child> {
  const child = fork(fileURLToPath(import.meta.url), ['--server', mode], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters = new Map<string, (m: FromChild) => void>();
  child.on('message', (m: FromChild) => {
    const key = Object.keys(m)[0]!;
    waiters.get(key)?.(m);
    waiters.delete(key);
  });
  const wait = <T extends FromChild>(key: string) => new Promise<T>((resolve) => waiters.set(key, resolve as (m: FromChild) => void));
  const ready = (await wait<Extract<FromChild, { ready: unknown }>>('ready')).ready;
  return {
    ready,
    request: <T extends FromChild>(m: ToChild, key: string) => {
      const p = wait<T>(key);
      child.send(m);
      return p;
    },
    stop: async () => {
      child.send({ cmd: 'exit' });
      await new Promise((r) => child.once('exit', r));
    },
  };
}

interface Stream {
  write(m: object): void;
  on(event: 'data', fn: (m: { nonce: string; version_info: string; resources: { name: string }[] }) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  cancel(): void;
}

async function openStreams(address: string, tokens: string[] | undefined): Promise<{ streams: Stream[]; clients: Client[]; openMs: number; onNext: () => Promise<number> }> {
  const { envoyService } = await import('../src/lib/protos.ts');
  const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
  const clients = Array.from({ length: CHANNELS }, (_, i) => new Ctor(address, credentials.createInsecure(), { 'grpc.bench_channel': i }) as unknown as Client & { StreamSecrets(md: Metadata): Stream });
  const streams: Stream[] = [];
  let received = 0;
  let target = STREAMS;
  let resolveAll: (() => void) | undefined;
  const start = Date.now();
  const allFirst = new Promise<void>((r) => (resolveAll = r));
  for (let i = 0; i < STREAMS; i++) {
    const md = new Metadata();
    if (tokens) md.set('authorization', `Bearer ${tokens[i % tokens.length]}`);
    const s = (clients[i % CHANNELS] as unknown as { StreamSecrets(md: Metadata): Stream }).StreamSecrets(md);
    let first = true;
    s.on('data', (m) => {
      if (first) {
        first = false;
        s.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: m.version_info, response_nonce: m.nonce });
      }
      if (++received === target) resolveAll?.();
    });
    s.on('error', () => {});
    s.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], node: { id: `sidecar-${i}` } });
    streams.push(s);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  await Promise.race([allFirst, new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${received}/${STREAMS} streams answered`)), Math.max(1000, DEADLINE - Date.now())))]);
  const openMs = Date.now() - start;
  return {
    streams, clients, openMs,
    /** Resolves with ms until every stream received one more message. */
    onNext: () => {
      const t0 = Date.now();
      target = received + STREAMS;
      return new Promise<number>((resolve, reject) => {
        resolveAll = () => resolve(Date.now() - t0);
        setTimeout(() => reject(new Error(`push reached ${received - (target - STREAMS)}/${STREAMS} streams`)), Math.max(1000, DEADLINE - Date.now()));
      });
    },
  };
}

const MB = 1024 * 1024;

async function run(mode: 'meshward' | 'baseline') {
  const child = await startChild(mode);
  try {
    let tokens: string[] | undefined;
    if (mode === 'meshward') {
      const { loadOrCreateBootstrapKey, signBootstrapToken } = await import('../src/identity/index.ts');
      const key = await loadOrCreateBootstrapKey(child.ready.dataDir);
      tokens = await Promise.all(Array.from({ length: IDENTITIES }, (_, i) => signBootstrapToken(key, { namespace: 'bench', serviceAccount: `sa-${i}`, ttlMs: 3_600_000, nowMs: Date.now() })));
    }
    const before = (await child.request<{ mem: NodeJS.MemoryUsage }>({ cmd: 'mem' }, 'mem')).mem;
    const opened = await openStreams(child.ready.grpc, tokens);
    await new Promise((r) => setTimeout(r, 500)); // let the ACKs land
    const after = (await child.request<{ mem: NodeJS.MemoryUsage }>({ cmd: 'mem' }, 'mem')).mem;
    const next = opened.onNext();
    if (mode === 'meshward') {
      const res = await fetch(`http://${child.ready.http}/v1/ca/rotate`, { method: 'POST', headers: { authorization: `Bearer ${child.ready.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ newRoot: true, activateAfter: '1h' }) });
      if (!res.ok) throw new Error(`rotate failed: ${res.status} ${await res.text()}`);
    } else {
      void child.request({ cmd: 'broadcast' }, 'broadcasted');
    }
    const pushMs = await next;
    for (const s of opened.streams) s.cancel();
    for (const c of opened.clients) c.close();
    return {
      openMs: opened.openMs,
      pushMs,
      heapPerStream: (after.heapUsed - before.heapUsed) / STREAMS,
      rssPerStream: (after.rss - before.rss) / STREAMS,
      rssMb: after.rss / MB,
    };
  } finally {
    await child.stop();
  }
}

async function main() {
  const base = await run('baseline');
  const mw = await run('meshward');
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  console.log(`SDS: ${STREAMS} concurrent StreamSecrets streams (${IDENTITIES} identities, ${CHANNELS} HTTP/2 connections), clients in a separate process on loopback`);
  console.log(`node ${process.version}, ${os.cpus().length} cores (shared, noisy machine: compare the ratios, not the absolute values)`);
  const rows: [string, string, string, string][] = [
    ['open all streams (first response)', `${base.openMs} ms`, `${mw.openMs} ms`, `${(mw.openMs / base.openMs).toFixed(2)}×`],
    ['server heap per stream', kb(base.heapPerStream), kb(mw.heapPerStream), `${(mw.heapPerStream / base.heapPerStream).toFixed(2)}×`],
    ['server RSS per stream', kb(base.rssPerStream), kb(mw.rssPerStream), `${(mw.rssPerStream / base.rssPerStream).toFixed(2)}×`],
    ['push to the last stream (meshward: root rotation → ROOTCA)', `${base.pushMs} ms`, `${mw.pushMs} ms`, `${(mw.pushMs / base.pushMs).toFixed(2)}×`],
  ];
  console.log(`${'measure'.padEnd(60)} ${'bare grpc-js'.padStart(14)} ${'meshward SDS'.padStart(14)}  ratio`);
  for (const [a, b, c, d] of rows) console.log(`${a.padEnd(60)} ${b.padStart(14)} ${c.padStart(14)}  ${d}`);
  console.log(`meshward server RSS with ${STREAMS} streams: ${mw.rssMb.toFixed(0)} MiB`);
}

if (process.argv.includes('--server')) {
  void serverMain(process.argv[process.argv.indexOf('--server') + 1] as 'meshward' | 'baseline');
} else {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
