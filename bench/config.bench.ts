/**
 * Configuration load: time to load + validate + snapshot the sample config and a 1,000-document
 * config, against the baseline of only parsing the same YAML (no validation), in the same run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createSnapshot, listConfigFiles, loadConfigDir } from '../src/config/index.ts';

function timeMs(fn: () => void, iterations: number): number {
  fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / iterations;
}

function bigConfig(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-config-'));
  const docs: string[] = [];
  for (let i = 0; i < 500; i++) {
    docs.push(`apiVersion: meshward.io/v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-${i % 10} }\nspec:\n  serviceAccount: sa-${i}\n  labels: { app: svc-${i} }\n  ports: [{ name: http, port: 8080 }]\n  endpoints: [{ address: 10.0.${i % 250}.${i % 200}, labels: { version: v1 } }]`);
    docs.push(`apiVersion: meshward.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: allow-${i}, namespace: ns-${i % 10} }\nspec:\n  selector: { matchLabels: { app: svc-${i} } }\n  rules:\n    - from: [{ source: { principals: ["cluster.local/ns/ns-${i % 10}/sa/sa-${(i + 1) % 500}"] } }]\n      to: [{ operation: { methods: [GET, POST], paths: ["/api/*"] } }]`);
  }
  writeFileSync(path.join(dir, 'all.yaml'), docs.join('\n---\n'));
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
