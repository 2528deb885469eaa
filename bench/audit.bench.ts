/**
 * Audit store throughput: decision records per second sustained through `AuditLog.append` until
 * durable (masking, JSON, SHA-256 chain, batched transactions), against a baseline measured in the
 * same run: raw batched inserts of the same rows (JSON only, no masking, no hashing, no queue)
 * into the same schema. Also the hot-path cost of one `append`. PostgreSQL too when DATABASE_URL
 * is set.
 *
 * Each phase runs in a fresh process (`--phase <name> <v4|v7>`), so one phase's heap, JIT and
 * page-cache state do not colour the next.
 *
 * The serve default against its baseline (time-ordered ids) is the ratio issue 17 holds to ≥ 0.9×:
 * it runs AUDIT_BENCH_ROUNDS interleaved rounds (3 by default; the two sides swap order every
 * round) and prints each round's ratio and the median, since one pair of 8 s phases on this shared
 * machine has measured anywhere from 0.67× to 1.05×.
 *
 *   node --import tsx bench/audit.bench.ts          (DATABASE_URL=postgres://... for PostgreSQL)
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { AuditLog, type AuditStore, type DecisionRecordV1 } from '../src/audit/index.ts';
import { PostgresAuditStore } from '../src/audit/postgres.ts';
import { prepareRecord } from '../src/audit/row.ts';
import { SqliteAuditStore } from '../src/audit/sqlite.ts';
import { WorkerSqliteAuditStore } from '../src/audit/sqlite-worker-store.ts';
import type { Clock } from '../src/lib/clock.ts';
import { systemClock } from '../src/lib/clock.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { median } from './h2load.ts';

const DURATION_MS = Number(process.env.AUDIT_BENCH_SECONDS ?? 8) * 1000;
const ROUNDS = Math.max(1, Number(process.env.AUDIT_BENCH_ROUNDS ?? 3));
const BATCH = 1000;
const PACE_QUEUE = 5000;
const T0 = Date.now();

/** A realistic decision: OPA-Envoy-style input with a bearer token, cookie and query string. */
/**
 * Decision ids: `v4` random UUIDs (what src/lib/ids.ts makes today) scatter inserts across the
 * decision_id index; `v7`-style time-ordered UUIDs append to it.
 */
let idKind: 'v4' | 'v7' = 'v4';
const ID_TAIL = randomUUID().slice(8);

function decisionIdFor(i: number): string {
  return idKind === 'v4' ? randomUUID() : `${(i >>> 0).toString(16).padStart(8, '0')}${ID_TAIL}`;
}

function makeDecision(i: number): DecisionRecordV1 {
  return {
    decisionId: decisionIdFor(i),
    time: T0 + i,
    decision: i % 10 === 0 ? 'deny' : 'allow',
    reason: i % 10 === 0 ? 'denied by shop/orders-allow-web: no ALLOW policy matched' : 'allowed by shop/orders-allow-web rule 0',
    status: i % 10 === 0 ? 403 : 200,
    matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'orders-allow-web', action: 'ALLOW', rule: 0 }],
    configVersion: '3f9a1c2e8b7d6a55',
    sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/web',
    destination: 'shop/orders',
    method: 'GET',
    host: 'orders.shop.svc.cluster.local',
    path: `/api/v1/orders/${i % 1000}?expand=items`,
    requestId: `7c1e${i}`,
    requestPrincipal: 'https://issuer.example.com/alice',
    latencyUs: 85,
    input: {
      attributes: {
        source: { address: { socketAddress: { address: '10.0.0.12', portValue: 41234 } }, principal: 'spiffe://cluster.local/ns/shop/sa/web' },
        destination: { address: { socketAddress: { address: '10.0.0.40', portValue: 8080 } }, principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
        request: {
          http: {
            id: `7c1e${i}`, method: 'GET', path: `/api/v1/orders/${i % 1000}?expand=items`, host: 'orders.shop.svc.cluster.local', scheme: 'http', protocol: 'HTTP/1.1',
            headers: {
              ':authority': 'orders.shop.svc.cluster.local', ':method': 'GET', ':path': `/api/v1/orders/${i % 1000}?expand=items`,
              authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl', cookie: 'session=abc123',
              'user-agent': 'curl/8.5.0', accept: '*/*', 'x-request-id': `7c1e${i}`, 'x-forwarded-proto': 'http',
            },
          },
        },
      },
      parsed_path: ['api', 'v1', 'orders', String(i % 1000)],
      parsed_query: { expand: ['items'] },
    },
  };
}

function fresh(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mw-bench-audit-'));
}

/** Baseline: JSON + batched INSERTs of the same columns, no masking, no hashing, no queue. */
interface Rate {
  /** Records per wall-clock second. */
  rate: number;
  /** Process CPU (all threads, user+system) per record, µs: far less sensitive to other load on a shared machine. */
  cpuUs: number;
}

/** CPU ms per thread of this process (Linux /proc), to split main-thread from writer-thread cost. */
function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) * (1000 / 100));
    }
  } catch {
    // Not Linux: no breakdown.
  }
  return out;
}

/**
 * µs per record on the main thread, on the busiest other thread (the SQLite writer thread when
 * there is one) and on the rest (V8 GC helpers, libuv). With a core per thread, the slower of
 * the first two bounds throughput.
 */
function threadSplit(before: Map<string, number>, records: number): string {
  const after = threadCpuMs();
  const main = String(process.pid);
  const others: number[] = [];
  let mainMs = 0;
  for (const [tid, ms] of after) {
    const d = ms - (before.get(tid) ?? 0);
    if (tid === main) mainMs = d;
    else others.push(d);
  }
  others.sort((a, b) => b - a);
  const us = (ms: number) => ((ms * 1000) / records).toFixed(1);
  const busiest = others[0] ?? 0;
  const rest = others.slice(1).reduce((a, b) => a + b, 0);
  const bound = Math.max(mainMs, busiest);
  return `CPU per record: main thread ${us(mainMs)} µs, busiest other thread ${us(busiest)} µs, rest ${us(rest)} µs (a core per thread ⇒ ≈ ${fmt((records / bound) * 1000)} records/s)`;
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

function sqliteBaseline(file: string): Rate {
  const store = new SqliteAuditStore({ file }); // creates the same schema and pragmas
  void store.close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare('INSERT INTO audit_records (seq, decision_id, time, decision, status, source_principal, request_principal, destination, method, path, config_version, policies, body, prev_hash, hash) VALUES (@seq, @decisionId, @time, @decision, @status, @sourcePrincipal, @requestPrincipal, @destination, @method, @path, @configVersion, @policies, @body, \'\', \'\')');
  const tx = db.transaction((rows: (ReturnType<typeof prepareRecord> & { seq: number })[]) => { for (const r of rows) insert.run(r); });
  let seq = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    const rows: (ReturnType<typeof prepareRecord> & { seq: number })[] = [];
    for (let j = 0; j < BATCH; j++) {
      const d = makeDecision(seq);
      rows.push({ ...prepareRecord(d, []), seq: ++seq });
    }
    tx(rows);
  }
  const rate = seq / ((performance.now() - t0) / 1000);
  const cpuUs = cpuSince(cpu0) / seq;
  db.close();
  return { rate, cpuUs };
}

/** A clock whose timers never fire: the hot-path measurement never flushes. */
const frozenClock: Clock = { now: () => Date.now(), setTimer: () => () => {} };

/**
 * ns per `append` with the writer idle (enqueue only), the median over chunks of 1,000: records
 * are built before each chunk and only the appends are timed, each chunk into a fresh log (one the writer would have emptied).
 * Timing 200,000 records built up front into one log mostly measured the GC of what they
 * retained: 130 ns to 1.6 µs on the same code, depending on the machine's load.
 */
function appendCost(store: AuditStore): number {
  const perChunk: number[] = [];
  for (let c = 0; c < 200; c++) {
    const log = new AuditLog({ store, clock: frozenClock, registry: createRegistry(), logger: silentLogger(), settings: () => ({ maskPaths: [], recordAllows: true }), maxQueue: 10_000_000, batchSize: 10_000_000 });
    const records = Array.from({ length: BATCH }, (_, i) => makeDecision(c * BATCH + i));
    const t0 = process.hrtime.bigint();
    for (const r of records) log.append(r);
    perChunk.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  // The median chunk: a chunk that a young-generation collection lands in is not the append's cost.
  return median(perChunk);
}

/** Producer appends as fast as backpressure allows for DURATION_MS; rate = records durable / elapsed. */
async function sustained(store: AuditStore): Promise<Rate & { refused: number; maxQueue: number; split: string }> {
  const maxQueue = 100_000;
  const log = new AuditLog({ store, clock: systemClock, registry: createRegistry(), logger: silentLogger(), settings: () => ({ maskPaths: ['/attributes/request/http/headers/x-api-key'], recordAllows: true }), maxQueue });
  let i = 0;
  let peak = 0;
  const threads0 = threadCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    // Produce one batch, then yield to the event loop like a server would between requests.
    for (let j = 0; j < BATCH; j++) {
      if (!log.append(makeDecision(i))) {
        await log.flush();
        j--;
        continue;
      }
      i++;
    }
    peak = Math.max(peak, log.stats().queued);
    await new Promise((r) => setImmediate(r));
    // Like a server at its limit, do not run the queue into its bound: past a few batches of
    // backlog, wait for the writer (a full 100k-record queue mostly measures the GC).
    while (log.stats().queued > PACE_QUEUE) await new Promise((r) => setTimeout(r, 1));
  }
  await log.flush();
  const elapsed = (performance.now() - t0) / 1000;
  const { written, rejected } = log.stats();
  const cpuUs = cpuSince(cpu0) / written;
  const split = threadSplit(threads0, written);
  await log.close();
  return { rate: written / elapsed, cpuUs, refused: rejected, maxQueue: peak, split };
}

async function pgBaseline(url: string, prefix: string): Promise<Rate> {
  const store = await PostgresAuditStore.open({ connectionString: url, tablePrefix: prefix });
  await store.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let seq = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    const rows: (ReturnType<typeof prepareRecord> & { seq: number })[] = [];
    for (let j = 0; j < BATCH; j++) rows.push({ ...prepareRecord(makeDecision(seq), []), seq: ++seq });
    const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
    await client.query(
      `INSERT INTO ${prefix}records (seq, decision_id, time, decision, status, source_principal, request_principal, destination, method, path, config_version, policies, body, prev_hash, hash) SELECT *, '', '' FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])`,
      [col('seq'), col('decisionId'), col('time'), col('decision'), col('status'), col('sourcePrincipal'), col('requestPrincipal'), col('destination'), col('method'), col('path'), col('configVersion'), col('policies'), col('body')],
    );
  }
  const rate = seq / ((performance.now() - t0) / 1000);
  const cpuUs = cpuSince(cpu0) / seq;
  await client.query(`DROP TABLE IF EXISTS ${prefix}records, ${prefix}anchors`);
  await client.end();
  return { rate, cpuUs };
}

/** The writer thread's start-up is not part of the sustained rate. */
async function openWorker(file: string, synchronous: 'normal' | 'full'): Promise<AuditStore> {
  const store = await WorkerSqliteAuditStore.open({ file, synchronous });
  await store.whenReady();
  return store;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const show = (r: Rate, base?: Rate) =>
  `${fmt(r.rate)} records/s${base ? ` (${(r.rate / base.rate).toFixed(2)}× baseline)` : ''}; CPU ${r.cpuUs.toFixed(1)} µs/record = ${fmt(1e6 / r.cpuUs)} records per CPU-second${base ? ` (${(base.cpuUs / r.cpuUs).toFixed(2)}× baseline)` : ''}`;

type Phase = 'sqlite-baseline' | 'worker-normal' | 'worker-full' | 'in-thread' | 'append-cost' | 'pg-baseline' | 'pg-append';

/** Runs one phase in this process and prints its line. */
async function runPhase(phase: Phase, ids: 'v4' | 'v7'): Promise<void> {
  idKind = ids;
  const dir = fresh();
  const file = path.join(dir, 'audit.db');
  try {
    switch (phase) {
      case 'sqlite-baseline':
        console.log(`SQLite baseline (JSON + batched INSERT, no mask/hash/queue): ${show(sqliteBaseline(file))}`);
        return;
      case 'worker-normal':
      case 'worker-full':
      case 'in-thread': {
        const store = phase === 'in-thread' ? new SqliteAuditStore({ file }) : await openWorker(file, phase === 'worker-full' ? 'full' : 'normal');
        const name = { 'worker-normal': 'worker-thread writer (serve default), sync=normal', 'worker-full': 'worker-thread writer, sync=full', 'in-thread': 'in-thread writer, sync=normal' }[phase];
        const r = await sustained(store);
        console.log(`SQLite append -> durable, ${name}: ${show(r)}; ${r.split}; queue full ${r.refused}×, peak queue ${fmt(r.maxQueue)}`);
        return;
      }
      case 'append-cost': {
        const idle = new SqliteAuditStore({ file });
        console.log(`append() hot-path cost (enqueue only): ${appendCost(idle).toFixed(0)} ns/record`);
        await idle.close();
        return;
      }
      case 'pg-baseline':
      case 'pg-append': {
        const url = process.env.DATABASE_URL!;
        const prefix = `bench${randomBytes(4).toString('hex')}_`;
        if (phase === 'pg-baseline') {
          console.log(`PostgreSQL baseline (JSON + unnest INSERT, no mask/hash/lock/queue): ${show(await pgBaseline(url, prefix))}`);
          return;
        }
        const store = await PostgresAuditStore.open({ connectionString: url, tablePrefix: prefix });
        const r = await sustained(store);
        console.log(`PostgreSQL append -> durable: ${show(r)}; ${r.split}; queue full ${r.refused}×, peak queue ${fmt(r.maxQueue)} (PostgreSQL server CPU not counted)`);
        const cleanup = await PostgresAuditStore.open({ connectionString: url, tablePrefix: prefix });
        await cleanup.dropTables();
        await cleanup.close();
        return;
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a phase in a fresh process (no heap, JIT or page-cache state carried over from the previous phase) and returns its line. */
function phaseInChild(phase: Phase, ids: 'v4' | 'v7'): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--phase', phase, ids], { encoding: 'utf8', env: process.env });
  if (r.status !== 0) throw new Error(`phase ${phase} (${ids}) failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** `rate` of a phase line (records/s), for the ratio against the baseline of the same id kind. */
const rateOf = (line: string) => Number(/: ([\d,]+) records\/s/.exec(line)?.[1]?.replaceAll(',', '') ?? Number.NaN);
const cpuOf = (line: string) => Number(/CPU ([\d.]+) µs\/record/.exec(line)?.[1] ?? Number.NaN);
const withRatio = (line: string, base: string) => line.replace(/(records\/s)(; CPU [\d.]+ µs\/record = [\d,]+ records per CPU-second)/, `$1 (${(rateOf(line) / rateOf(base)).toFixed(2)}× baseline)$2 (${(cpuOf(base) / cpuOf(line)).toFixed(2)}× baseline)`);

/** Range and median of ratios, e.g. "0.91×–0.97× (median 0.95×)". */
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}×–${Math.max(...xs).toFixed(2)}× (median ${median(xs).toFixed(2)}×)`;

/**
 * The serve default against its baseline, ROUNDS times, the order swapped every round so neither
 * side always runs first: per round its ratio (records/s, and records per CPU-second).
 */
function interleavedServeDefault(): void {
  const wall: number[] = [];
  const perCpu: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Phase[] = round % 2 === 1 ? ['sqlite-baseline', 'worker-normal'] : ['worker-normal', 'sqlite-baseline'];
    const lines = new Map(order.map((phase) => [phase, phaseInChild(phase, 'v7')] as const));
    const base = lines.get('sqlite-baseline')!;
    const ours = lines.get('worker-normal')!;
    wall.push(rateOf(ours) / rateOf(base));
    perCpu.push(cpuOf(base) / cpuOf(ours));
    console.log(`round ${round}:\n  ${base}\n  ${withRatio(ours, base)}`);
  }
  console.log(`serve default / baseline over ${ROUNDS} interleaved rounds: ${spread(wall)} in records/s; ${spread(perCpu)} in records per CPU-second`);
}

async function main(): Promise<void> {
  console.log(`audit bench: ${DURATION_MS / 1000} s per phase, each phase in a fresh process, producer chunks of ${BATCH}, record JSON ≈ ${prepareRecord(makeDecision(1), []).body.length} bytes, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
  console.log('\n[time-ordered (UUIDv7-style) decision ids (what meshward makes)]');
  interleavedServeDefault();
  console.log('\n[random UUIDv4 decision ids]');
  const base = phaseInChild('sqlite-baseline', 'v4');
  console.log(base);
  for (const phase of ['worker-normal', 'worker-full', 'in-thread'] as const) console.log(withRatio(phaseInChild(phase, 'v4'), base));
  console.log('');
  console.log(phaseInChild('append-cost', 'v7'));
  if (process.env.DATABASE_URL) {
    const pgBase = phaseInChild('pg-baseline', 'v7');
    console.log(pgBase);
    console.log(withRatio(phaseInChild('pg-append', 'v7'), pgBase));
  } else {
    console.log('PostgreSQL: skipped (set DATABASE_URL)');
  }
}

const phaseAt = process.argv.indexOf('--phase');
if (phaseAt >= 0) await runPhase(process.argv[phaseAt + 1] as Phase, process.argv[phaseAt + 2] as 'v4' | 'v7');
else await main();

