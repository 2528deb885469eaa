/**
 * Child process of bench/saturation.bench.ts: meshward's ext_authz pipeline with (`full`) or
 * without (`bare`) the audit capability, prints `{"port":N}` once it listens; on SIGTERM it stops
 * gracefully (gRPC drained, audit flushed) and prints its own counts as one JSON line:
 * `{"decided":N,"audit":{...}}`, where `decided` is every check the pipeline decided.
 *
 *   node --import tsx bench/saturation-server.ts <bare|full> <configDir> <dataDir>
 */
import 'reflect-metadata';
import type { AuditCapability } from '../src/audit/index.ts';
import { createAuditCapability } from '../src/audit/index.ts';
import { createAuthzCapability } from '../src/authz/index.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { createMeshward } from '../src/meshward.ts';

const [kind, configDir, dataDir] = process.argv.slice(2);
if ((kind !== 'bare' && kind !== 'full') || !configDir || !dataDir) {
  process.stderr.write('usage: saturation-server.ts <bare|full> <configDir> <dataDir>\n');
  process.exit(2);
}
const registry = createRegistry();
const mw = await createMeshward(
  { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
  { logger: silentLogger(), registry, capabilities: kind === 'full' ? [createAuditCapability, createAuthzCapability] : [createAuthzCapability] },
);
await mw.start();
process.stdout.write(`${JSON.stringify({ port: Number(mw.addresses.grpc.split(':').pop()) })}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await mw.stop();
    const checks = await registry.getSingleMetric('meshward_authz_checks_total')!.get();
    const decided = checks.values.filter((v) => v.labels.decision !== 'error').reduce((n, v) => n + v.value, 0);
    const errors = checks.values.filter((v) => v.labels.decision === 'error').reduce((n, v) => n + v.value, 0);
    const waits = (await registry.getSingleMetric('meshward_audit_backpressure_waits_total')?.get())?.values[0]?.value ?? 0;
    const audit = mw.capability<AuditCapability>('audit')?.stats();
    process.stdout.write(`${JSON.stringify({ decided, errors, waits, ...(audit ? { audit } : {}) })}\n`);
    process.exit(0);
  })();
});
