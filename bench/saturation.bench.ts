/**
 * Saturation: one core of ext_authz checks with the audit log on, and nothing lost.
 *
 * The server runs in its own process pinned to CPU 1 (`taskset -c 1`: the main thread and the
 * SQLite writer thread share that core), h2load on CPU 0 sends as many CheckRequests as the server
 * answers (8 connections × 16 streams, JWT + 50 YAML policies, the same inputs as
 * bench/authz.bench.ts). Each round runs the pipeline without audit (the baseline) and then with
 * audit to SQLite, 5 s each; the audited server is then stopped gracefully (SIGTERM: gRPC drained,
 * audit flushed) and the rows in its database are counted. Lost = checks the pipeline decided
 * (the server's own counter, which includes h2load's answered checks) − rows written; it must be 0.
 * Throughput is reported as a ratio of the no-audit pipeline in the same round.
 *
 *   npm run bench saturation        (SATURATION_ROUNDS, SATURATION_SECONDS, SATURATION_MAX_QUEUE)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { sqliteFile } from '../src/audit/index.ts';
import { prepareBenchInputs } from './authz-servers.ts';
import { CHECK_PATH, type H2Result, h2load, median, parseSummary } from './h2load.ts';

const ROUNDS = Number(process.env.SATURATION_ROUNDS ?? 3);
const SECONDS = Number(process.env.SATURATION_SECONDS ?? 5);
/**
 * The smallest queue the Mesh schema accepts: it fills within milliseconds, so each round runs
 * under backpressure rather than measuring how much a 100,000-record queue absorbs in 5 s.
 */
const MAX_QUEUE = Number(process.env.SATURATION_MAX_QUEUE ?? 1000);
const SERVER_CPU = '1';
const LOAD_CPU = '0';

interface ServerCounts {
  decided: number;
  errors: number;
  waits: number;
  audit?: { written: number; rejected: number; dropped?: number; refused?: number; queued: number };
}

interface Run { load: H2Result; counts: ServerCounts; cpuSeconds: number }
interface Round { bare: Run; full: Run; rows: number }

/** CPU seconds (user + system, all threads) the process has used: /proc/<pid>/stat fields 14 and 15. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/** Checks decided per CPU-second of the server: much less sensitive than req/s to other load on a shared core. */
const perCpu = (run: Run) => run.counts.decided / run.cpuSeconds;

const work = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-saturation-'));
const serverScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'saturation-server.ts');

function readLine(child: ChildProcess): () => Promise<string> {
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  return () => new Promise<string>((resolve, reject) => {
    const line = lines.shift();
    if (line !== undefined) resolve(line);
    else {
      waiting.push(resolve);
      child.once('exit', (code) => reject(new Error(`saturation server exited with ${code}`)));
    }
  });
}

/** Runs one server pinned to SERVER_CPU, loads it for SECONDS, stops it gracefully; returns h2load's result and the server's counts. */
async function runServer(kind: 'bare' | 'full', configDir: string, bodyFile: string, dataDir: string): Promise<Run> {
  const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, '--import', 'tsx', serverScript, kind, configDir, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const next = readLine(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const { port } = JSON.parse(await next()) as { port: number };
    const cpuBefore = cpuSecondsOf(child.pid!);
    const out = await h2load(['-c', '8', '-m', '16', '-D', String(SECONDS), '--warm-up-time', '1', `http://127.0.0.1:${port}${CHECK_PATH}`], bodyFile, { pin: LOAD_CPU });
    const cpuSeconds = cpuSecondsOf(child.pid!) - cpuBefore;
    child.kill('SIGTERM');
    const counts = JSON.parse(await next()) as ServerCounts;
    return { load: parseSummary(out), counts, cpuSeconds };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

function countRows(dataDir: string): number {
  const db = new Database(sqliteFile(dataDir), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const { configDir, bodyFile } = await prepareBenchInputs(work);
  const file = path.join(configDir, 'bench.yaml');
  const config = readFileSync(file, 'utf8');
  const auditSettings = '"audit":{"store":"sqlite"}';
  if (!config.includes(auditSettings)) throw new Error('bench config: Mesh audit settings not found');
  writeFileSync(file, config.replace(auditSettings, `"audit":{"store":"sqlite","maxQueue":${MAX_QUEUE}}`));

  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const bare = await runServer('bare', configDir, bodyFile, path.join(work, `bare-${r}`));
    const dataDir = path.join(work, `full-${r}`);
    mkdirSync(dataDir, { recursive: true });
    const full = await runServer('full', configDir, bodyFile, dataDir);
    const rows = countRows(dataDir);
    rounds.push({ bare, full, rows });
    const lost = full.counts.decided - rows;
    process.stdout.write(`round ${r + 1}: no audit ${bare.load.rps.toFixed(0)} req/s ${perCpu(bare).toFixed(0)}/CPU-s, audit ${full.load.rps.toFixed(0)} req/s ${perCpu(full).toFixed(0)}/CPU-s; decided ${full.counts.decided}, rows ${rows}, lost ${lost}, h2load 2xx ${full.load.ok}, failed ${full.load.failed}, errors ${full.counts.errors}, waits ${full.counts.waits}\n`);
  }

  const lost = rounds.reduce((n, r) => n + (r.full.counts.decided - r.rows), 0);
  const say = (s: string) => process.stdout.write(`${s}\n`);
  say(`\n# Saturation (${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.version}; server on CPU ${SERVER_CPU}, h2load on CPU ${LOAD_CPU}; audit maxQueue ${MAX_QUEUE}, onOverload default; ${ROUNDS} rounds of ${SECONDS} s + 1 s warm-up)`);
  say('| round | no audit req/s | audit req/s | ratio | no audit checks/CPU-s | audit checks/CPU-s | ratio | checks decided | rows written | lost | h2load 2xx | checks that waited for queue room |\n|---|---|---|---|---|---|---|---|---|---|---|---|');
  rounds.forEach((r, i) => say(`| ${i + 1} | ${r.bare.load.rps.toFixed(0)} | ${r.full.load.rps.toFixed(0)} | ${(r.full.load.rps / r.bare.load.rps).toFixed(2)} | ${perCpu(r.bare).toFixed(0)} | ${perCpu(r.full).toFixed(0)} | ${(perCpu(r.full) / perCpu(r.bare)).toFixed(2)} | ${r.full.counts.decided} | ${r.rows} | ${r.full.counts.decided - r.rows} | ${r.full.load.ok} | ${r.full.counts.waits} |`));
  say(`audit / no-audit, median of per-round ratios: ${median(rounds.map((r) => r.full.load.rps / r.bare.load.rps)).toFixed(2)}× in req/s (wall clock), ${median(rounds.map((r) => perCpu(r.full) / perCpu(r.bare))).toFixed(2)}× in checks per CPU-second of the server`);
  say(lost === 0 ? '0 lost: every decided check has its record after the graceful stop' : `${lost} LOST: checks decided without a record`);
  rmSync(work, { recursive: true, force: true });
  if (lost !== 0) process.exitCode = 1;
}

await main();
