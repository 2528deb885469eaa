/**
 * h2load plumbing shared by the ext_authz benchmark (bench/authz.bench.ts) and the latency probe
 * (bench/authz-probe.ts): throughput runs, paced latency runs from a timing script, and one
 * benchmark server per child process (bench/authz-server.ts).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ServerKind } from './authz-servers.ts';

const execFileAsync = promisify(execFile);
export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export interface H2Result { rps: number; ok: number; failed: number }
/** A benchmark server: its port on 127.0.0.1, and whether it speaks TLS (h2 over TLS; h2load does not verify). */
export interface Target { port: number; tls?: boolean }

const checkUrl = (t: Target) => `${t.tls ? 'https' : 'http'}://127.0.0.1:${t.port}${CHECK_PATH}`;
export interface Latency { rps: number; p50: number; p90: number; p99: number; p999: number; n: number }

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** h2load runs as a child process: servers may live in the caller's process, so never block its event loop. */
export async function h2load(args: string[], body: string, options: { pin?: string } = {}): Promise<string> {
  const argv = [...args, '-d', body, '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
  const [cmd, full] = options.pin ? ['taskset', ['-c', options.pin, 'h2load', ...argv]] : ['h2load', argv];
  const { stdout } = await execFileAsync(cmd, full, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export function parseSummary(out: string): H2Result {
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  return { rps, ok: Number(m?.[1] ?? 0), failed: Number(m?.[2] ?? 0) };
}

export async function throughput(target: Target, body: string): Promise<H2Result> {
  return parseSummary(await h2load(['-c', '8', '-m', '16', '-D', '3', '--warm-up-time', '1', checkUrl(target)], body));
}

/** Unpaced checks that JIT-compile the server's code and grow its heap, as a server in production has. */
export async function warmUp(target: Target, body: string, requests: number): Promise<void> {
  await h2load(['-c', '8', '-m', '16', '-n', String(requests), checkUrl(target)], body);
}

/**
 * A timing script for h2load (offset in ms, tab, URI per request). h2load's `--rps` cannot pace
 * 2,000 req/s: its timer never fires more often than every 10 ms, so it sends bursts of 20 (8
 * clients × 2–3), and the measured latency is mostly the wait behind the rest of the burst (the
 * trivial handler's p50 measured 1.5–2 ms that way). A timing script schedules each request;
 * libev's ≈ 1 ms timer granularity and the per-tick drift leave ≈ 1.5 ms between ticks, so ticks
 * of 1 ms carry 3 or 4 requests (3.5 on average, ≈ 2,100–2,300 req/s achieved) and the rate h2load
 * reports is what is quoted.
 */
export function pacedSchedule(target: Target, requests: number): string {
  const uri = checkUrl(target);
  const lines: string[] = [];
  let tick = 0;
  while (lines.length < requests) {
    const inTick = tick % 2 === 1 ? 4 : 3;
    for (let k = 0; k < inTick && lines.length < requests; k++) lines.push(`${tick.toFixed(3)}\t${uri}`);
    tick++;
  }
  return `${lines.join('\n')}\n`;
}

/** The last CPU, for h2load, when `taskset` exists (util-linux); undefined otherwise. */
export function loadGeneratorCpu(): string | undefined {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return String(os.cpus().length - 1);
  } catch {
    return undefined;
  }
}

/** One paced run of `requests` checks on one connection; latencies of the first 10 % (warm-up) are dropped. */
export async function pacedLatency(work: string, target: Target, body: string, requests: number, pin: string | undefined): Promise<Latency> {
  const script = path.join(work, `schedule-${target.port}.txt`);
  const log = path.join(work, `h2load-${target.port}.log`);
  writeFileSync(script, pacedSchedule(target, requests));
  rmSync(log, { force: true });
  const out = await h2load(['-c', '1', '-m', '100', `--timing-script-file=${script}`, '--log-file', log], body, pin ? { pin } : {});
  const us = readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split('\t')[2])).filter(Number.isFinite);
  const warm = us.slice(Math.floor(us.length * 0.1)).sort((a, b) => a - b);
  const ms = (p: number) => percentile(warm, p) / 1000;
  return { rps: parseSummary(out).rps, p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), n: us.length };
}

export interface ChildServer extends Target {
  pid: number;
  /** Resolves once the child's audit backlog is durable. */
  settle(): Promise<void>;
}

/**
 * Runs `kind` alone in a child process (bench/authz-server.ts) while `run` measures it.
 * `nodeFlags` go to the child's node (for example `--max-semi-space-size=16`).
 */
export async function inChild<T>(work: string, kind: ServerKind, configDir: string, run: (child: ChildServer) => Promise<T>, nodeFlags: string[] = []): Promise<T> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'authz-server.ts');
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', script, kind, configDir, path.join(work, `child-${kind}`)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const expectLine = lineWaiter(child);
  try {
    const listening = JSON.parse((await expectLine(/\{"port":\d+[^\n]*\}\n/))[0]) as Target;
    const settle = async () => {
      const flushed = expectLine(/flushed\n/);
      child.stdin!.write('flush\n');
      await flushed;
    };
    return await run({ ...listening, pid: child.pid!, settle });
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

function lineWaiter(child: ChildProcess): (pattern: RegExp) => Promise<RegExpExecArray> {
  let out = '';
  const waiters: { pattern: RegExp; resolve(m: RegExpExecArray): void; reject(err: Error): void }[] = [];
  // One exit listener for all waiters (one per wait piled up past the 10-listener warning).
  child.once('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`benchmark server exited with ${code}`));
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const m = w.pattern.exec(out);
      if (m) {
        out = out.slice(m.index + m[0].length);
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  return (pattern) => new Promise<RegExpExecArray>((resolve, reject) => {
    if (child.exitCode !== null) reject(new Error(`benchmark server exited with ${child.exitCode}`));
    else waiters.push({ pattern, resolve, reject });
  });
}
