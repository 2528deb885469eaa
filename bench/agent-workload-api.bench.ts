/**
 * Workload API latency over the agent's Unix socket (`npm run bench agent`, or
 * `node --import tsx bench/agent-workload-api.bench.ts`).
 *
 * Baseline, measured in the same run: a grpc-js server on another Unix socket serving the same
 * proto with precomputed answers (no header check, no encoding of the SVID, no cache, no JWT
 * verification): the transport floor. Ratios say what the Workload API adds on top of it.
 * The identity source is the tests' (real certificates, real ES256 JWT-SVIDs), so meshward's own
 * latency is not part of the figures: FetchJWTSVID is measured on the agent's cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { startWorkloadApi, workloadApiServiceDefinition } from '../src/agent/workload-api/index.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { collect, jwtSigner, makeSvid, securityHeader, TestIdentitySource, unary, type WorkloadClient, workloadApiClient } from '../test/agent/workload-api-fixtures.ts';

const N = Number(process.env.WL_BENCH_CALLS ?? 2000);
const STREAMS = Number(process.env.WL_BENCH_STREAMS ?? 200);

function summary(samples: number[]): { p50: number; p99: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length * 0.5)]!, p99: sorted[Math.floor(sorted.length * 0.99)]!, mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

async function time(n: number, fn: () => Promise<unknown>): Promise<ReturnType<typeof summary>> {
  for (let i = 0; i < Math.min(200, n); i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return summary(samples);
}

async function floorServer(socketPath: string, x509: unknown, jwt: unknown, validated: unknown): Promise<Server> {
  const server = new Server();
  server.addService(workloadApiServiceDefinition(), {
    FetchX509SVID: (call: ServerWritableStream<unknown, unknown>) => call.write(x509),
    FetchJWTSVID: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb(null, jwt),
    ValidateJWTSVID: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb(null, validated),
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return server;
}

async function firstMessage(c: WorkloadClient): Promise<void> {
  const stream = collect(c.FetchX509SVID({}, securityHeader()));
  await stream.until(1);
  stream.cancel();
}

const dir = mkdtempSync(path.join(tmpdir(), 'mw-wl-bench-'));
const source = new TestIdentitySource(await jwtSigner('bench-key'), (await makeSvid()).svid);
const api = await startWorkloadApi({ socketPath: path.join(dir, 'workload.sock'), source, logger: silentLogger(), registry: createRegistry() });
const client = workloadApiClient(api.socketPath);

// The floor answers exactly what the Workload API answers, computed once.
const x509 = await new Promise((resolve) => { const s = collect(client.FetchX509SVID({}, securityHeader())); s.until(1).then(([m]) => { s.cancel(); resolve(m); }); });
const jwt = await unary(client.FetchJWTSVID, client, { audience: ['orders'] });
const token = jwt.svids[0]!.svid;
const validated = await unary(client.ValidateJWTSVID, client, { audience: 'orders', svid: token });
const floor = await floorServer(path.join(dir, 'floor.sock'), x509, jwt, validated);
const floorClient = workloadApiClient(path.join(dir, 'floor.sock'));

const rows: [string, ReturnType<typeof summary>, ReturnType<typeof summary>][] = [];
rows.push(['FetchX509SVID: open → first message', await time(N / 4, () => firstMessage(client)), await time(N / 4, () => firstMessage(floorClient))]);
rows.push(['FetchJWTSVID (cached token)', await time(N, () => unary(client.FetchJWTSVID, client, { audience: ['orders'] })), await time(N, () => unary(floorClient.FetchJWTSVID, floorClient, { audience: ['orders'] }))]);
rows.push(['ValidateJWTSVID (ES256)', await time(N, () => unary(client.ValidateJWTSVID, client, { audience: 'orders', svid: token })), await time(N, () => unary(floorClient.ValidateJWTSVID, floorClient, { audience: 'orders', svid: token }))]);

console.log(`Workload API over a Unix socket, ${N} calls each (streams: ${N / 4}); baseline: same proto, precomputed answers\n`);
console.log('| call | p50 | p99 | baseline p50 | baseline p99 | ratio (p50) |');
console.log('|---|---|---|---|---|---|');
const ms = (v: number) => `${v.toFixed(3)} ms`;
for (const [name, s, b] of rows) console.log(`| ${name} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(b.p50)} | ${ms(b.p99)} | ${(s.p50 / b.p50).toFixed(2)} |`);

// A rotation reaching STREAMS open FetchX509SVID streams: publish → last stream has it.
const open = Array.from({ length: STREAMS }, () => collect(client.FetchX509SVID({}, securityHeader())));
await Promise.all(open.map((s) => s.until(1)));
const next = await makeSvid();
const t0 = performance.now();
source.publish(next.svid);
await Promise.all(open.map((s) => s.until(2)));
const pushMs = performance.now() - t0;
for (const s of open) s.cancel();
console.log(`\nRotation pushed to ${STREAMS} open FetchX509SVID streams: ${pushMs.toFixed(1)} ms to the last one (${(pushMs / STREAMS).toFixed(3)} ms per stream)`);

client.close();
floorClient.close();
floor.forceShutdown();
await api.close();
rmSync(dir, { recursive: true, force: true });
