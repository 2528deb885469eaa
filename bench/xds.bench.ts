/**
 * xDS scale: N simulated sidecars (grpc-js clients on the official ADS protos, one HTTP/2
 * connection each, in a separate process so their memory and CPU are not counted) hold ADS
 * streams to one XdsServer. Measured in the server process:
 *   - initial sync of N proxies (CDS, EDS, LDS, RDS, each ACKed),
 *   - memory per connected proxy (heap + buffers, after GC, delta over the server with 0 proxies),
 *   - for a canary weight change (RDS only) and an endpoint change (EDS only): time from the
 *     configuration change to the last ACK, and server CPU per push,
 * each against a baseline measured in the same run:
 *   - memory: the encoded configuration one proxy receives (what a control plane holding a copy
 *     per proxy, as per-node go-control-plane snapshots do, would keep),
 *   - CPU: generating and encoding every proxy's configuration from scratch (no sharing, no diff).
 *
 *   node --import tsx bench/xds.bench.ts     (XDS_BENCH_PROXIES=1000 XDS_BENCH_SERVICES=200 XDS_BENCH_MODE=sotw|delta)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { credentials, Metadata, type ClientDuplexStream, loadPackageDefinition, Server, ServerCredentials, type ServiceClientConstructor } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createSnapshot, loadConfigDir, type ConfigSnapshot } from '../src/config/index.ts';
import { systemClock } from '../src/lib/clock.ts';
import { MeshwardError } from '../src/lib/errors.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { ENVOY_INCLUDE_DIRS, PROTO_LOADER_OPTIONS } from '../src/lib/protos.ts';
import { compileModel, generateResources } from '../src/xds/generate/index.ts';
import type { WorkloadAuthenticator } from '../src/xds/identity.ts';
import { buildSnapshot } from '../src/xds/resources.ts';
import { XdsServer } from '../src/xds/server.ts';

const PROXIES = Number(process.env.XDS_BENCH_PROXIES ?? 1000);
const SERVICES = Number(process.env.XDS_BENCH_SERVICES ?? 200);
const MODE = (process.env.XDS_BENCH_MODE ?? 'sotw') as 'sotw' | 'delta';
const TYPES = {
  cds: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  eds: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  lds: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  rds: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
};

type Json = Record<string, unknown>;

// ---------- the mesh ----------

/** SERVICES services in 10 namespaces, 3 endpoints each, one port; every 10th has a canary Route + TrafficPolicy. */
function meshYaml(canaryWeight: number, extraEndpoint: boolean): string {
  const docs: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const ns = `ns${i % 10}`;
    const port = 8000 + (i % 20);
    const eps = [1, 2, 3].map((e) => `{ address: 10.${i >> 8}.${i & 255}.${e}, labels: { version: v${e === 3 ? 2 : 1} } }`);
    if (extraEndpoint && i === 0) eps.push('{ address: 10.250.0.9, labels: { version: v1 } }');
    docs.push(`apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: svc${i}, namespace: ${ns} }\nspec:\n  serviceAccount: sa${i}\n  ports: [{ name: http, port: ${port} }]\n  endpoints: [${eps.join(', ')}]`);
    if (i % 10 === 0) {
      docs.push(`apiVersion: meshward.io/v1\nkind: TrafficPolicy\nmetadata: { name: svc${i}, namespace: ${ns} }\nspec:\n  host: svc${i}\n  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n  outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }`);
      docs.push(`apiVersion: meshward.io/v1\nkind: Route\nmetadata: { name: svc${i}, namespace: ${ns} }\nspec:\n  hosts: [svc${i}]\n  http:\n    - name: canary\n      contextExtensions: { route: svc${i}-api }\n      retries: { attempts: 2 }\n      timeout: 5s\n      route:\n        - { destination: { host: svc${i}, subset: v1 }, weight: ${100 - canaryWeight} }\n        - { destination: { host: svc${i}, subset: v2 }, weight: ${canaryWeight} }`);
    }
  }
  return docs.join('\n---\n');
}

/** Proxy i runs as service i % SERVICES (so several sidecars per service, as replicas). */
function proxyOf(i: number): { token: string; nodeId: string; namespace: string; serviceAccount: string; service: string } {
  const s = i % SERVICES;
  return { token: `ns${s % 10}:sa${s}`, nodeId: `svc${s}-${i}`, namespace: `ns${s % 10}`, serviceAccount: `sa${s}`, service: `svc${s}` };
}

const benchAuthenticator: WorkloadAuthenticator = {
  async authenticate(md: Metadata) {
    const m = /^Bearer (ns\d+):(sa\d+)$/.exec(String(md.get('authorization')[0] ?? ''));
    if (!m) throw new MeshwardError('UNAUTHENTICATED', 'bad token');
    return { spiffeId: `spiffe://cluster.local/ns/${m[1]}/sa/${m[2]}`, trustDomain: 'cluster.local', namespace: m[1]!, serviceAccount: m[2]!, via: 'bench' };
  },
};

// ---------- the simulated sidecars (child process) ----------

interface ClientJob {
  address: string;
  count: number;
  mode: 'sotw' | 'delta';
  edsNames: string[];
  rdsNames: string[];
}

function loadAdsClient(): ServiceClientConstructor {
  // json: false keeps resources packed (Any = {type_url, value}): a sidecar stand-in does not need to
  // unpack every cluster, and the client process stays light on this shared machine.
  const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { ...PROTO_LOADER_OPTIONS, json: false, includeDirs: ENVOY_INCLUDE_DIRS });
  return (loadPackageDefinition(def) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: ServiceClientConstructor } } } } }).envoy.service.discovery.v3.AggregatedDiscoveryService;
}

async function runClients(job: ClientJob): Promise<void> {
  const Ads = loadAdsClient();
  const send = (m: Json) => process.send?.(m);
  const t0 = performance.now();
  let synced = 0;
  let responses = 0;
  const streams: ClientDuplexStream<Json, Json>[] = [];
  for (let i = 0; i < job.count; i++) {
    const p = proxyOf(i);
    // a distinct channel option gives each sidecar its own connection, as real Envoys have
    const client = new Ads(job.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
    const md = new Metadata();
    md.set('authorization', `Bearer ${p.token}`);
    const method = job.mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    const call = (client as unknown as Record<string, (md: Metadata) => ClientDuplexStream<Json, Json>>)[method]!.call(client, md);
    streams.push(call);
    const seen = new Set<string>();
    call.on('data', (res: Json) => {
      responses++;
      const type = String(res.type_url);
      if (job.mode === 'sotw') call.write({ type_url: type, version_info: res.version_info, response_nonce: res.nonce, resource_names: type === TYPES.eds ? job.edsNames : type === TYPES.rds ? job.rdsNames : [] });
      else call.write({ type_url: type, response_nonce: res.nonce });
      if (!seen.has(type)) {
        seen.add(type);
        if (seen.size === 4 && ++synced === job.count) send({ event: 'synced', ms: performance.now() - t0 });
      }
    });
    call.on('error', () => {});
    const nodeMsg = { id: p.nodeId, metadata: { fields: { SERVICE: { stringValue: p.service } } } };
    if (job.mode === 'sotw') {
      call.write({ node: nodeMsg, type_url: TYPES.cds });
      call.write({ type_url: TYPES.eds, resource_names: job.edsNames });
      call.write({ type_url: TYPES.lds });
      call.write({ type_url: TYPES.rds, resource_names: job.rdsNames });
    } else {
      call.write({ node: nodeMsg, type_url: TYPES.cds });
      call.write({ type_url: TYPES.eds, resource_names_subscribe: job.edsNames });
      call.write({ type_url: TYPES.lds });
      call.write({ type_url: TYPES.rds, resource_names_subscribe: job.rdsNames });
    }
    // open connections in small batches so the server is not hit by N handshakes in one tick
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
  }
  process.on('message', (m: Json) => {
    if (m.cmd === 'responses') send({ event: 'responses', responses });
    if (m.cmd === 'exit') {
      for (const s of streams) s.cancel();
      process.exit(0);
    }
  });
}

// ---------- the control plane (this process) ----------

const gc: () => void = (() => {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
})();

function serverMemory(): { heapAndBuffers: number; rss: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heapAndBuffers: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
}

function cpuMs(fn: () => void): number {
  const c = process.cpuUsage();
  fn();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / 1000;
}

function waitFor(child: ChildProcess, event: string, timeoutMs: number): Promise<Json> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), timeoutMs);
    const on = (m: Json) => {
      if (m.event === event) {
        clearTimeout(t);
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
}

/** XDS_BENCH_CPUPROF=file.cpuprofile: a CPU profile of the server during the two pushes only. */
async function startProfile(): Promise<(() => Promise<void>) | undefined> {
  const file = process.env.XDS_BENCH_CPUPROF;
  if (!file) return undefined;
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

const fmt = (n: number, d = 1) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const kb = (b: number) => `${fmt(b / 1024)} KB`;

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-xds-bench-'));
  const write = (weight: number, extra: boolean): ConfigSnapshot => {
    writeFileSync(path.join(dir, 'mesh.yaml'), meshYaml(weight, extra));
    return createSnapshot(loadConfigDir(dir));
  };
  let snapshot = write(10, false);
  const registry = createRegistry();
  const xds = new XdsServer({ config: { current: () => snapshot }, authenticator: () => benchAuthenticator, logger: silentLogger(), registry, clock: systemClock, debounce: { quietMs: 100, maxMs: 1000 } });
  const grpc = new Server({ 'grpc.max_concurrent_streams': 100_000, 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  xds.register(grpc);
  const port = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

  // Baselines, in this run.
  const model = compileModel(snapshot);
  const sample = generateResources(model, proxyOf(0));
  const sampleSnap = buildSnapshot(snapshot.version, sample);
  const perProxyBytes = Object.values(sampleSnap.resources).reduce((a, m) => a + [...m.values()].reduce((b, r) => b + r.any.value.length, 0), 0);
  // Linear by construction: measured on up to 100 proxies and scaled to N (keeps the run bounded).
  const naiveSample = Math.min(PROXIES, 100);
  const naiveMs = (cpuMs(() => {
    for (let i = 0; i < naiveSample; i++) buildSnapshot(snapshot.version, generateResources(compileModel(snapshot), proxyOf(i)));
  }) * PROXIES) / naiveSample;
  const edsNames = [...sampleSnap.resources.endpoint.keys()];
  const rdsNames = [...sampleSnap.resources.route.keys()];
  const counts = Object.fromEntries(Object.entries(sampleSnap.resources).map(([k, m]) => [k, m.size]));

  const before = serverMemory();
  const child = fork(fileURLToPath(import.meta.url), ['client'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const syncCpu = process.cpuUsage();
  const syncedP = waitFor(child, 'synced', 100_000);
  child.send({ address: `127.0.0.1:${port}`, count: PROXIES, mode: MODE, edsNames, rdsNames } satisfies ClientJob);
  const syncMs = Number((await syncedP).ms);
  const syncCpuMs = (() => { const d = process.cpuUsage(syncCpu); return (d.user + d.system) / 1000; })();
  // wait for the last ACKs to reach the server
  await new Promise((r) => setTimeout(r, 300));
  const after = serverMemory();
  const perProxy = (after.heapAndBuffers - before.heapAndBuffers) / PROXIES;
  const perProxyRss = (after.rss - before.rss) / PROXIES;

  const convergence = registry.getSingleMetric('meshward_xds_convergence_seconds')!;
  const converged = async (): Promise<{ count: number; sum: number }> => {
    const v = (await convergence.get()).values;
    return { count: Number(v.find((x) => (x as { metricName?: string }).metricName?.endsWith('_count'))?.value ?? 0), sum: Number(v.find((x) => (x as { metricName?: string }).metricName?.endsWith('_sum'))?.value ?? 0) };
  };

  /** Applies a configuration change through the debounced path; waits until every proxy ACKed it. */
  async function change(next: () => ConfigSnapshot): Promise<{ toLastAckMs: number; pushCpuMs: number; meanMs: number }> {
    const nextSnapshot = next(); // loading the YAML is not part of the push
    const base = await converged();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    snapshot = nextSnapshot;
    xds.configChanged();
    let now = base;
    while (now.count - base.count < PROXIES) {
      await new Promise((r) => setTimeout(r, 2));
      now = await converged();
      if (performance.now() - t0 > 60_000) throw new Error(`only ${now.count - base.count}/${PROXIES} proxies converged`);
    }
    const toLastAckMs = performance.now() - t0;
    const d = process.cpuUsage(cpu0);
    return { toLastAckMs, pushCpuMs: (d.user + d.system) / 1000, meanMs: ((now.sum - base.sum) / (now.count - base.count)) * 1000 };
  }

  const profile = await startProfile();
  const canary = await change(() => write(30, false));
  const endpoint = await change(() => write(30, true));
  await profile?.();
  child.send({ cmd: 'exit' });
  grpc.forceShutdown();
  rmSync(dir, { recursive: true, force: true });

  const istioPerProxyKb = (1.5 * 1024 * 1024) / 2000; // istiod 1.5 GB for 2,000 sidecars (Istio 1.10-1.16 load test)
  const lines = [
    `xDS scale: ${PROXIES} sidecars (${MODE}, one HTTP/2 connection each, separate process), ${SERVICES} services in 10 namespaces, debounce 100 ms`,
    `per proxy: ${counts.cluster} clusters, ${counts.endpoint} endpoints, ${counts.listener} listeners, ${counts.route} routes = ${kb(perProxyBytes)} encoded`,
    '',
    `initial sync of ${PROXIES} proxies (connect, 4 types, each ACKed): ${fmt(syncMs, 0)} ms wall from the first connection, ${fmt(syncCpuMs, 0)} ms server CPU (${fmt(syncCpuMs / PROXIES, 2)} ms per proxy)`,
    `memory per connected proxy: ${kb(perProxy)} heap+buffers (${kb(perProxyRss)} RSS)`,
    `  baseline (a copy of its encoded configuration per proxy): ${kb(perProxyBytes)} -> ratio ${fmt(perProxy / perProxyBytes, 2)}`,
    `  Istio published: istiod 1.5 GB for 2,000 sidecars = ${fmt(istioPerProxyKb, 0)} KB per proxy -> meshward/Istio ${fmt(perProxy / 1024 / istioPerProxyKb, 3)}`,
    `canary weight change (RDS only): change -> last ACK ${fmt(canary.toLastAckMs, 0)} ms (includes 100 ms debounce), mean per proxy ${fmt(canary.meanMs, 0)} ms, server CPU ${fmt(canary.pushCpuMs, 0)} ms`,
    `endpoint added (EDS only):       change -> last ACK ${fmt(endpoint.toLastAckMs, 0)} ms (includes 100 ms debounce), mean per proxy ${fmt(endpoint.meanMs, 0)} ms, server CPU ${fmt(endpoint.pushCpuMs, 0)} ms`,
    `  baseline (generate + encode every proxy's full configuration, no sharing; measured on ${naiveSample}, scaled to ${PROXIES}): ${fmt(naiveMs, 0)} ms CPU -> push CPU ratio ${fmt(canary.pushCpuMs / naiveMs, 3)} (canary), ${fmt(endpoint.pushCpuMs / naiveMs, 3)} (endpoint)`,
    `server: ${xds.stats().proxyKinds} distinct proxy kinds generated, ${xds.stats().resources} distinct encoded resources shared`,
    `total bench time ${fmt((Date.now() - started) / 1000)} s (shared 2-core machine, other engineers running too; the client process competes for the same cores)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

if (process.argv[2] === 'client') {
  process.once('message', (job: ClientJob) => void runClients(job));
} else {
  await main();
}
