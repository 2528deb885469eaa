/**
 * Configuration load: time to load + validate + snapshot the sample config and a 1,000-document
 * config, against the baseline of only parsing the same YAML (no validation), in the same run.
 * Then the event-loop stall of a 10,000-document reload: parsed on the event loop (the baseline),
 * in the load thread, and in a whole meshward (load thread + ext_authz compile + subscribers).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { ConfigStore, createSnapshot, listConfigFiles, loadConfigDir } from '../src/config/index.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { createMeshward } from '../src/meshward.ts';

function timeMs(fn: () => void, iterations: number): number {
  fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / iterations;
}

function generatedDocuments(pairs: number): string {
  const docs: string[] = [];
  for (let i = 0; i < pairs; i++) {
    docs.push(`apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-${i % 10} }\nspec:\n  serviceAccount: sa-${i}\n  labels: { app: svc-${i} }\n  ports: [{ name: http, port: 8080 }]\n  endpoints: [{ address: 10.0.${i % 250}.${i % 200}, labels: { version: v1 } }]`);
    docs.push(`apiVersion: meshward.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-${i}, namespace: ns-${i % 10} }\nspec:\n  selector: { matchLabels: { app: svc-${i} } }\n  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/ns-${i % 10}/sa/sa-${(i + 1) % 500}"] } }]\n      to: [{ operation: { methods: [GET, POST], paths: ["/api/*"] } }]`);
  }
  return docs.join('\n---\n');
}

function bigConfig(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-config-'));
  writeFileSync(path.join(dir, 'all.yaml'), generatedDocuments(500));
  return dir;
}

function parseOnly(dir: string): void {
  for (const f of listConfigFiles(dir)) for (const d of parseAllDocuments(readFileSync(f, 'utf8')) as unknown as { toJS(): unknown }[]) d.toJS();
}

const big = bigConfig();
for (const [name, dir, n] of [['sample policies/ (15 documents)', 'policies', 200], ['generated (1,000 documents)', big, 10]] as const) {
  const parse = timeMs(() => parseOnly(dir), n);
  const full = timeMs(() => createSnapshot(loadConfigDir(dir)), n);
  console.log(`${name}: YAML parse only ${parse.toFixed(2)} ms; load+validate+snapshot ${full.toFixed(2)} ms (${(full / parse).toFixed(2)}× the parse baseline)`);
}
rmSync(big, { recursive: true, force: true });

/** Longest event-loop delay (ms) while `reload` runs, and its wall time. */
async function stall(reload: () => Promise<unknown>): Promise<{ maxMs: number; wallMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  await sleep(20);
  const t0 = performance.now();
  await reload();
  const wallMs = performance.now() - t0;
  await sleep(20);
  delay.disable();
  return { maxMs: delay.max / 1e6, wallMs };
}

/** A sample config directory; `grow()` adds 10,000 generated documents to it. */
function sampleDir(): { root: string; dir: string; grow(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-stall-'));
  const dir = path.join(root, 'config');
  cpSync('policies', dir, { recursive: true });
  return { root, dir, grow: () => writeFileSync(path.join(dir, 'generated.yaml'), generatedDocuments(5_000)) };
}

const rows: [string, { maxMs: number; wallMs: number }][] = [];
for (const inThread of [true, false]) {
  const s = sampleDir();
  const store = new ConfigStore({ dir: s.dir, logger: silentLogger(), registry: createRegistry(), inThread });
  await store.reload(); // starts the load thread
  s.grow();
  rows.push([inThread ? 'store, parsed on the event loop (baseline)' : 'store, parsed in the load thread', await stall(() => store.reload())]);
  store.close();
  rmSync(s.root, { recursive: true, force: true });
}
{
  const s = sampleDir();
  const mw = await createMeshward({ configDir: s.dir, dataDir: path.join(s.root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false }, { logger: silentLogger(), registry: createRegistry() });
  await mw.start();
  await mw.config.reload();
  s.grow();
  rows.push(['meshward serve: load thread + ext_authz compile + subscribers', await stall(() => mw.config.reload())]);
  await mw.stop();
  rmSync(s.root, { recursive: true, force: true });
}
const baseline = rows[0]![1].maxMs;
console.log('\n10,000-document reload: longest event-loop stall (monitorEventLoopDelay max) and reload wall time');
for (const [name, r] of rows) console.log(`${name}: stall ${r.maxMs.toFixed(0)} ms (${(r.maxMs / baseline).toFixed(2)}× the baseline), reload ${r.wallMs.toFixed(0)} ms`);
