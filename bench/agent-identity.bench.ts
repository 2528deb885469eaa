/**
 * The agent's own costs (`npm run bench agent`): what one agent serving one workload holds in
 * memory, what a renewal costs, and SDS latency over its Unix socket. meshward runs in-process
 * (real CA, loopback sockets), so renewal figures include meshward's signing.
 *
 * Baselines, measured in the same run:
 * - memory: a bare grpc-js server on a Unix socket with one open SDS-shaped stream;
 * - renewal: meshward generating the key and signing itself (`issueWithNewKey`, the central path);
 * - SDS latency: meshward's own SDS FetchSecrets over loopback TCP with a token.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentials, Metadata, Server, type ServerDuplexStream } from '@grpc/grpc-js';
import { startAgent } from '../src/agent/index.ts';
import { type CaCapability, createCaCapability } from '../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../src/identity/index.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { envoyService, envoyServiceDefinition } from '../src/lib/protos.ts';
import { createMeshward } from '../src/meshward.ts';
import { bindUnixSocket } from '../src/agent/socket.ts';
import { createSdsCapability, SECRET_TYPE_URL } from '../src/sds/index.ts';

const RENEWALS = Number(process.env.AGENT_BENCH_RENEWALS ?? 300);
const FETCHES = Number(process.env.AGENT_BENCH_FETCHES ?? 2000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

interface SdsClient {
  FetchSecrets(req: object, md: Metadata, cb: (err: Error | null, res: unknown) => void): void;
  StreamSecrets(md: Metadata): { write(m: object): void; on(e: string, f: (...a: unknown[]) => void): void; cancel(): void };
  close(): void;
}
const sdsCtor = () => envoyService('envoy.service.secret.v3.SecretDiscoveryService');

async function heapAfter(fn: () => Promise<unknown>): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const before = process.memoryUsage().heapUsed;
  const keep = await fn();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const after = process.memoryUsage().heapUsed;
  (globalThis as { __keep?: unknown[] }).__keep = [...((globalThis as { __keep?: unknown[] }).__keep ?? []), keep];
  return after - before;
}

function fetchOnce(client: SdsClient, md: Metadata): Promise<unknown> {
  return new Promise((resolve, reject) => client.FetchSecrets({ type_url: SECRET_TYPE_URL, resource_names: ['default', 'ROOTCA'] }, md, (err, res) => (err ? reject(err) : resolve(res))));
}

async function latency(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 200; i++) await fn();
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    s.push(performance.now() - t);
  }
  s.sort((a, b) => a - b);
  return { p50: s[Math.floor(n * 0.5)]!, p99: s[Math.floor(n * 0.99)]! };
}

function openStream(client: SdsClient, md: Metadata): Promise<void> {
  const stream = client.StreamSecrets(md);
  stream.on('error', () => {}); // ended at shutdown
  return new Promise((resolve) => {
    stream.on('data', () => resolve());
    stream.write({ type_url: SECRET_TYPE_URL, resource_names: ['default', 'ROOTCA'] });
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'mw-agent-bench-'));
  const dataDir = path.join(work, 'data');
  const configDir = path.join(work, 'config');
  for (const d of [dataDir, configDir]) (await import('node:fs')).mkdirSync(d);
  writeFileSync(path.join(configDir, 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata:\n  name: mesh\nspec:\n  trustDomain: bench.local\n');
  const mw = await createMeshward({ configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, createSdsCapability] });
  await mw.start();
  const token = await signBootstrapToken(await loadOrCreateBootstrapKey(dataDir), { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
  const tokenFile = path.join(work, 'token');
  writeFileSync(tokenFile, token);
  const bearer = new Metadata();
  bearer.set('authorization', `Bearer ${token}`);

  // Memory: baseline server + one stream, then the agent + one SDS stream.
  const floorSocket = path.join(work, 'floor.sock');
  const floorHeap = await heapAfter(async () => {
    const server = new Server();
    server.addService(envoyServiceDefinition('envoy.service.secret.v3.SecretDiscoveryService'), {
      StreamSecrets: (call: ServerDuplexStream<object, object>) => call.on('data', () => call.write({ version_info: '1', resources: [], type_url: SECRET_TYPE_URL, nonce: 'n' })),
      DeltaSecrets: () => {}, FetchSecrets: () => {},
    });
    await bindUnixSocket(server, floorSocket, 0o600);
    const client = new (sdsCtor())(`unix:${floorSocket}`, credentials.createInsecure()) as unknown as SdsClient;
    await openStream(client, new Metadata());
    return { server, client };
  });
  const sdsSocket = path.join(work, 'sds.sock');
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  let agentClient: SdsClient | undefined;
  const agentHeap = await heapAfter(async () => {
    agent = await startAgent({ grpcAddress: mw.addresses.grpc, apiUrl: `http://${mw.addresses.http}`, tokenFile, plaintext: true, sdsSocket, logger: silentLogger() });
    await agent.identity.ready();
    agentClient = new (sdsCtor())(`unix:${sdsSocket}`, credentials.createInsecure()) as unknown as SdsClient;
    await openStream(agentClient, new Metadata());
    return agent;
  });
  console.log(`memory (heap, one workload, one SDS stream): agent ${(agentHeap / 1024).toFixed(0)} KiB, baseline bare gRPC server ${(floorHeap / 1024).toFixed(0)} KiB, ratio ${(agentHeap / Math.max(1, floorHeap)).toFixed(2)}x; process RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (meshward in the same process)`);

  // Renewal: the agent's CSR round trip vs meshward generating and signing in-process.
  const ca = mw.capability<CaCapability>('ca')!;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < RENEWALS; i++) await agent!.identity.renewNow();
  const agentMs = (performance.now() - t0) / RENEWALS;
  const agentCpu = process.cpuUsage(cpu0);
  const cpu1 = process.cpuUsage();
  const t1 = performance.now();
  for (let i = 0; i < RENEWALS; i++) await ca.issuer.issueWithNewKey('spiffe://bench.local/ns/shop/sa/orders', { requestedBy: 'bench', method: 'sds' });
  const centralMs = (performance.now() - t1) / RENEWALS;
  const centralCpu = process.cpuUsage(cpu1);
  const perCpu = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000 / RENEWALS;
  console.log(`renewal: agent ${agentMs.toFixed(2)} ms wall, ${perCpu(agentCpu).toFixed(2)} ms CPU (agent + meshward) per renewal; baseline meshward-generated key ${centralMs.toFixed(2)} ms wall, ${perCpu(centralCpu).toFixed(2)} ms CPU; ratio ${(perCpu(agentCpu) / perCpu(centralCpu)).toFixed(1)}x CPU`);

  // SDS latency: agent socket vs meshward TCP.
  const central = new (sdsCtor())(mw.addresses.grpc, credentials.createInsecure()) as unknown as SdsClient;
  const viaAgent = await latency(FETCHES, () => fetchOnce(agentClient!, new Metadata()));
  const viaMeshward = await latency(FETCHES, () => fetchOnce(central, bearer));
  console.log(`SDS FetchSecrets(default, ROOTCA): agent socket p50 ${(viaAgent.p50 * 1000).toFixed(0)} µs p99 ${(viaAgent.p99 * 1000).toFixed(0)} µs; baseline meshward over TCP with a token p50 ${(viaMeshward.p50 * 1000).toFixed(0)} µs p99 ${(viaMeshward.p99 * 1000).toFixed(0)} µs; ratio p50 ${(viaAgent.p50 / viaMeshward.p50).toFixed(2)}x`);

  central.close();
  agentClient?.close();
  await agent?.stop();
  await mw.stop();
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
