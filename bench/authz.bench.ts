/**
 * ext_authz benchmark (loopback only, bounded to ~1.5 minutes):
 *  1. policy evaluation alone: 10 vs 10,000 YAML rules on one workload (p50/p99 µs);
 *  2. h2load sending real CheckRequests (gRPC framing, 8 connections × 16 streams): a trivial
 *     grpc-js handler (the baseline, same run) vs the full pipeline (JWT + 50 YAML policies +
 *     audit to SQLite when the audit capability is available);
 *  3. p99 at 2,000 req/s (h2load --rps, per-request log) for both.
 *
 *   node --import tsx bench/authz.bench.ts
 */
import 'reflect-metadata';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { AuthzCapability } from '../src/authz/index.ts';
import { createAuthzCapability } from '../src/authz/index.ts';
import { authorizationServiceDefinition } from '../src/authz/proto.ts';
import type { ConfigDocument } from '../src/config/index.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { createMeshward } from '../src/meshward.ts';
import { compileAuthorizationPolicies, type MatchFacts } from '../src/policy/yaml/index.ts';
import type { CapabilityFactory } from '../src/server/capability.ts';

const ISSUER = 'https://auth.bench.example';
const work = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-authz-'));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------- 1. evaluation alone
function policyDocs(rules: number): ConfigDocument[] {
  const perPolicy = 50;
  return Array.from({ length: Math.ceil(rules / perPolicy) }, (_, p) => ({
    apiVersion: 'meshward.io/v1' as const, kind: 'AuthorizationPolicy', source: { file: 'bench', line: p },
    metadata: { name: `p${p}`, namespace: 'shop' },
    spec: {
      action: p % 10 === 0 ? 'DENY' : 'ALLOW', dryRun: false, selector: { matchLabels: { app: 'orders' } },
      rules: Array.from({ length: Math.min(perPolicy, rules - p * perPolicy) }, (_, r) => {
        const i = p * perPolicy + r;
        switch (i % 4) {
          case 0: return { from: [{ source: { principals: [`cluster.local/ns/shop/sa/sa${i}`] } }], to: [{ operation: { methods: ['GET'], paths: [`/api/r${i}`] } }] };
          case 1: return { to: [{ operation: { paths: [`/api/svc${i}/*`], methods: ['POST'] } }] };
          case 2: return { from: [{ source: { principals: [`cluster.local/ns/shop/sa/sa${i}`] } }], when: [{ key: 'request.headers[x-tenant]', values: [`t${i}`] }] };
          default: return { to: [{ operation: { paths: [`/items${i}/{*}/detail`] } }], when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] };
        }
      }),
    },
  })) as ConfigDocument[];
}

function evaluationBench(rules: number): { p50: number; p99: number } {
  const set = compileAuthorizationPolicies(policyDocs(rules), 'meshward-system');
  const workload = { namespace: 'shop', labels: { app: 'orders' } };
  const auth = { principal: `${ISSUER}/alice`, audiences: ['shop'], claims: { groups: ['admin'] } };
  const requests: MatchFacts[] = Array.from({ length: 1000 }, (_, k) => {
    const i = (k * 7919) % rules;
    return {
      method: k % 3 === 0 ? 'POST' : 'GET', host: 'orders', port: 8080, contextExtensions: {},
      path: [`/api/r${i}`, `/api/svc${i}/x`, '/api/nothing/here', `/items${i}/42/detail`][k % 4]!,
      headers: { 'x-tenant': `t${i}` }, sourcePrincipal: `cluster.local/ns/shop/sa/sa${i}`, sourceNamespace: 'shop', sourceIp: '10.0.0.1',
    };
  });
  for (let i = 0; i < 20_000; i++) set.evaluate(workload, requests[i % requests.length]!, auth);
  const samples: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    const f = requests[i % requests.length]!;
    const t0 = process.hrtime.bigint();
    set.evaluate(workload, f, auth);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

// ---------------------------------------------------------------- 2/3. h2load
function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

interface H2Result { rps: number; ok: number; failed: number }

const execFileAsync = promisify(execFile);

/** h2load runs as a child process: the servers live in this process, so never block the event loop. */
async function h2load(port: number, body: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('h2load', [
    ...args, '-c', '8', '-m', '16', '-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers',
    `http://127.0.0.1:${port}/envoy.service.auth.v3.Authorization/Check`,
  ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function throughput(port: number, body: string): Promise<H2Result> {
  const out = await h2load(port, body, ['-D', '3', '--warm-up-time', '1']);
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  return { rps, ok: Number(m?.[1] ?? 0), failed: Number(m?.[2] ?? 0) };
}

async function latencyAtRate(port: number, body: string, rate: number, seconds: number): Promise<{ p50: number; p99: number; n: number }> {
  const log = path.join(work, `h2load-${port}.log`);
  // --rps is per client: 8 clients share the rate.
  await h2load(port, body, ['-n', String(rate * seconds), '--rps', String(rate / 8), '--log-file', log]);
  const us = readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split('\t')[2])).filter(Number.isFinite);
  const warm = us.slice(Math.floor(us.length * 0.1)).sort((a, b) => a - b);
  return { p50: percentile(warm, 50) / 1000, p99: percentile(warm, 99) / 1000, n: us.length };
}

async function startTrivial(): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new Server({ 'grpc.max_concurrent_streams': 100_000 });
  server.addService(authorizationServiceDefinition(), { Check: (_call: unknown, cb: (e: null, r: object) => void) => cb(null, { status: { code: 0 }, okResponse: {} }) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, stop: () => new Promise((r) => server.tryShutdown(() => r())) };
}

async function pipelineConfig(dir: string): Promise<{ token: string }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
  const token = await new SignJWT({ sub: 'alice', groups: ['admin'] }).setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer(ISSUER).setAudience('shop').setIssuedAt().setExpirationTime('2h').sign(privateKey);
  const doc = (kind: string, name: string, ns: string, spec: object) => JSON.stringify({ apiVersion: 'meshward.io/v1', kind, metadata: { name, namespace: ns }, spec });
  const docs = [
    doc('Mesh', 'mesh', 'default', { audit: { store: 'sqlite' } }),
    doc('Service', 'orders', 'shop', { serviceAccount: 'orders', labels: { app: 'orders' }, ports: [{ name: 'http', port: 8080 }] }),
    doc('RequestAuthentication', 'jwt', 'shop', { selector: { matchLabels: { app: 'orders' } }, jwtRules: [{ issuer: ISSUER, audiences: ['shop'], jwks: JSON.stringify({ keys: [jwk] }), outputPayloadToHeader: 'x-jwt-payload' }] }),
    doc('AuthorizationPolicy', 'deny-debug', 'meshward-system', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/debug/*'] } }] }] }),
    ...Array.from({ length: 48 }, (_, i) => doc('AuthorizationPolicy', `allow-${i}`, 'shop', {
      selector: { matchLabels: { app: 'orders' } },
      rules: [
        { from: [{ source: { principals: [`cluster.local/ns/shop/sa/caller${i}`] } }], to: [{ operation: { methods: ['GET', 'POST'], paths: [`/api/v${i}/*`] } }] },
        { from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }], to: [{ operation: { paths: [`/api/orders/${i}`] } }], when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] },
      ],
    })),
    doc('AuthorizationPolicy', 'audit-writes', 'shop', { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST', 'DELETE'] } }] }] }),
  ];
  writeFileSync(path.join(dir, 'bench.yaml'), docs.join('\n---\n'));
  return { token };
}

function checkRequestBody(token: string): Buffer {
  const request = {
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/shop/sa/web', address: { socketAddress: { address: '10.1.2.3', portValue: 41000 } } },
      destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders', address: { socketAddress: { address: '10.0.0.1', portValue: 8080 } } },
      request: { http: { id: 'bench', method: 'GET', path: '/api/orders/47?expand=items', host: 'orders.shop.svc', scheme: 'http', protocol: 'HTTP/1.1', headers: { authorization: `Bearer ${token}`, 'user-agent': 'bench', 'x-request-id': 'bench' } } },
    },
  };
  return authorizationServiceDefinition().Check!.requestSerialize(request);
}

interface AuditHandle { flush(): Promise<void>; stats(): { written: number; rejected: number; queued: number } }

async function startPipeline(dir: string, withAudit: boolean, name: string): Promise<{ port: number; audit?: AuditHandle; authz: AuthzCapability; stop(): Promise<void> }> {
  const capabilities: CapabilityFactory[] = [];
  let audit = false;
  if (withAudit) {
    try {
      const mod = await import('../src/audit/index.ts');
      capabilities.push(mod.createAuditCapability as CapabilityFactory);
      audit = true;
    } catch (err) {
      process.stdout.write(`audit capability not available (${(err as Error).message}); benching without it\n`);
    }
  }
  capabilities.push(createAuthzCapability);
  const mw = await createMeshward(
    { configDir: dir, dataDir: path.join(work, `data-${name}`), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), capabilities },
  );
  await mw.start();
  const handle = audit ? mw.capability('audit') as unknown as AuditHandle : undefined;
  return { port: Number(mw.addresses.grpc.split(':').pop()), ...(handle ? { audit: handle } : {}), authz: mw.capability<AuthzCapability>('authz')!, stop: () => mw.stop() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function checkLatency(authz: AuthzCapability, request: object, n: number): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 2000; i++) await authz.check(request);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await authz.check(request);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function main(): Promise<void> {
  const lines: string[] = [];
  const say = (s: string) => { lines.push(s); process.stdout.write(`${s}\n`); };
  say(`# ext_authz benchmark (${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.version}; shared noisy machine)`);

  const small = evaluationBench(10);
  const large = evaluationBench(10_000);
  say('\n## Policy evaluation alone (YAML AuthorizationPolicy, one workload, 200k evaluations)');
  say('| rules | p50 µs | p99 µs |\n|---|---|---|');
  say(`| 10 | ${small.p50.toFixed(2)} | ${small.p99.toFixed(2)} |`);
  say(`| 10,000 | ${large.p50.toFixed(2)} | ${large.p99.toFixed(2)} |`);
  say(`10,000-rule p99 / 10-rule p99 = ${(large.p99 / small.p99).toFixed(2)}× (target: p99 < 20 µs)`);

  const configDir = path.join(work, 'config');
  execFileSync('mkdir', ['-p', configDir]);
  const { token } = await pipelineConfig(configDir);
  const bodyFile = path.join(work, 'check.bin');
  writeFileSync(bodyFile, grpcFrame(checkRequestBody(token)));

  const trivial = await startTrivial();
  const bare = await startPipeline(configDir, false, 'bare');
  const full = await startPipeline(configDir, true, 'full');
  for (const p of [bare, full]) {
    const probe = await p.authz.check(authorizationServiceDefinition().Check!.requestDeserialize(checkRequestBody(token)) as object);
    if (probe.outcome.decision.outcome !== 'allow') throw new Error(`pipeline probe not allowed: ${probe.outcome.decision.reason}`);
  }
  const fullName = `full pipeline (JWT + 50 YAML policies${full.audit ? ' + audit to SQLite' : ', audit unavailable'})`;

  const decoded = authorizationServiceDefinition().Check!.requestDeserialize(checkRequestBody(token)) as object;
  const inProcess = await checkLatency(bare.authz, decoded, 20_000);
  say('\n## One check in-process (authz.check without gRPC or audit: input, JWT (cached), 50 policies, response)');
  say(`p50 ${inProcess.p50.toFixed(1)} µs, p99 ${inProcess.p99.toFixed(1)} µs over 20k checks`);

  // Interleaved rounds: the machine is shared, so each round compares servers under the same noise.
  // After a run against the audited server, wait until its backlog is durable so the audit
  // writer does not steal CPU from the next server's run.
  const settle = async () => { await full.audit?.flush(); };
  const servers = [
    { name: 'trivial grpc-js handler', port: trivial.port, after: async () => {} },
    { name: 'pipeline without audit (JWT + 50 YAML policies)', port: bare.port, after: async () => {} },
    { name: fullName, port: full.port, after: settle },
  ];
  const rounds: H2Result[][] = [];
  for (let r = 0; r < 3; r++) {
    const round: H2Result[] = [];
    for (const srv of servers) {
      round.push(await throughput(srv.port, bodyFile));
      await srv.after();
    }
    rounds.push(round);
  }
  say('\n## Throughput under h2load (8 connections × 16 streams; 3 interleaved rounds of 3 s after 1 s warm-up; medians)');
  say('| server | req/s | failed | vs trivial (median of per-round ratios) |\n|---|---|---|---|');
  servers.forEach((srv, i) => {
    const rps = median(rounds.map((r) => r[i]!.rps));
    const ratio = median(rounds.map((r) => r[i]!.rps / r[0]!.rps));
    const failed = rounds.reduce((n, r) => n + r[i]!.failed, 0);
    say(`| ${srv.name} | ${rps.toFixed(0)} | ${failed} | ${ratio.toFixed(2)} |`);
  });
  say(`per-round req/s: ${rounds.map((r) => r.map((x) => x.rps.toFixed(0)).join(' / ')).join('; ')}`);

  say('\n## Latency at 2,000 req/s (h2load --rps, 6 s per server, first 10% dropped as warm-up)');
  say('| server | p50 ms | p99 ms | requests |\n|---|---|---|---|');
  for (const srv of servers) {
    const l = await latencyAtRate(srv.port, bodyFile, 2000, 6);
    await srv.after();
    say(`| ${srv.name} | ${l.p50.toFixed(3)} | ${l.p99.toFixed(3)} | ${l.n} |`);
  }
  if (full.audit) {
    const st = full.audit.stats();
    say(`\naudit: ${st.written} records written, ${st.rejected} rejected (queue full), ${st.queued} queued at the end`);
  }

  await full.stop();
  await bare.stop();
  await trivial.stop();
  writeFileSync(path.join(work, 'result.md'), lines.join('\n'));
  rmSync(work, { recursive: true, force: true });
}

await main();
