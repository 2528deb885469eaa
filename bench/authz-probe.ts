/**
 * Latency probe for ext_authz: the paced 2,000 req/s measurement of bench/authz.bench.ts alone,
 * for chosen servers, with the CPU each thread of the server process spent during the paced
 * window. Not part of `npm run bench` (its name does not end in .bench.ts): a tool for finding
 * where a p99 goes, a few minutes per try instead of the full benchmark's ten.
 *
 *   node --import tsx bench/authz-probe.ts [--kinds trivial,bare,full] [--rounds 3]
 *     [--requests 15000] [--warm 30000] [--node-flag=--max-semi-space-size=16 ...]
 */
import 'reflect-metadata';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { prepareBenchInputs, SERVER_NAMES, type ServerKind } from './authz-servers.ts';
import { inChild, type Latency, loadGeneratorCpu, median, pacedLatency, warmUp } from './h2load.ts';

const { values } = parseArgs({
  options: {
    kinds: { type: 'string', default: 'trivial,bare,full' },
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '15000' },
    warm: { type: 'string', default: '30000' },
    'node-flag': { type: 'string', multiple: true, default: [] },
  },
});
const kinds = values.kinds.split(',') as ServerKind[];
for (const k of kinds) if (!(k in SERVER_NAMES)) throw new Error(`unknown server kind ${k}; one of ${Object.keys(SERVER_NAMES).join(', ')}`);

/**
 * CPU ticks (user + system) per thread of a process, from /proc (Linux only; empty elsewhere),
 * keyed `main` for the event loop and `name/tid` for the others (worker threads are all named
 * `node`, so the audit writer is the busy one among them).
 */
function threadTicks(pid: number): Map<string, number> {
  const ticks = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return ticks;
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // comm is in parentheses and may hold spaces; the fields after it are space-separated.
      const name = Number(tid) === pid ? 'main' : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}/${tid}`;
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const used = Number(rest[11]) + Number(rest[12]);
      ticks.set(name, (ticks.get(name) ?? 0) + used);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return ticks;
}

interface ProbeResult { latency: Latency; cpuMsPerThread: Map<string, number> }

const TICK_MS = 10; // USER_HZ is 100 on Linux
const work = mkdtempSync(path.join(os.tmpdir(), 'mw-probe-'));
const { configDir, bodyFile } = await prepareBenchInputs(work);
const pin = loadGeneratorCpu();
const requests = Number(values.requests);
const results = new Map<ServerKind, ProbeResult[]>(kinds.map((k) => [k, []]));
for (let r = 0; r < Number(values.rounds); r++) {
  for (const kind of kinds) {
    const res = await inChild(work, kind, configDir, async (server) => {
      const { pid, settle } = server;
      await warmUp(server, bodyFile, Number(values.warm));
      await settle();
      const before = threadTicks(pid);
      const latency = await pacedLatency(work, server, bodyFile, requests, pin);
      await settle();
      const after = threadTicks(pid);
      const cpu = new Map<string, number>();
      for (const [name, t] of after) cpu.set(name, (t - (before.get(name) ?? 0)) * TICK_MS);
      return { latency, cpuMsPerThread: cpu };
    }, values['node-flag']);
    results.get(kind)!.push(res);
    const busy = [...res.cpuMsPerThread].filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]).map(([n, ms]) => `${n} ${((ms * 1000) / requests).toFixed(0)}`).join(', ');
    const l = res.latency;
    process.stdout.write(`round ${r + 1} ${kind}: ${l.rps.toFixed(0)} req/s, p50 ${l.p50.toFixed(2)} p90 ${l.p90.toFixed(2)} p99 ${l.p99.toFixed(2)} p99.9 ${l.p999.toFixed(2)} ms; CPU µs/request: ${busy}\n`);
  }
}
process.stdout.write(`\nmedians over ${values.rounds} rounds (h2load ${pin ? `pinned to CPU ${pin}` : 'not pinned'}${values['node-flag'].length ? `; node ${values['node-flag'].join(' ')}` : ''})\n`);
process.stdout.write('| server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | p99 per round |\n|---|---|---|---|---|---|---|\n');
for (const kind of kinds) {
  const rows = results.get(kind)!;
  const col = (f: (l: Latency) => number) => median(rows.map((x) => f(x.latency))).toFixed(2);
  process.stdout.write(`| ${kind} | ${col((l) => l.rps)} | ${col((l) => l.p50)} | ${col((l) => l.p90)} | ${col((l) => l.p99)} | ${col((l) => l.p999)} | ${rows.map((x) => x.latency.p99.toFixed(2)).join(' / ')} |\n`);
}
rmSync(work, { recursive: true, force: true });
