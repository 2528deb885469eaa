/**
 * `npm start` under SIGTERM (what an orchestrator or a terminal sends): npm's child must be
 * meshward itself (the start script `exec`s it), so the signal reaches it, it drains and exits, and
 * no node process is left serving. The start script runs dist/: skipped when it is not built.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';

const built = existsSync('dist/main.js');
if (!built) console.warn('test/cli/npm-start.test.ts: skipped, dist/main.js is absent (run `npm run build`)');

const scratch = mkdtempSync(path.join(tmpdir(), 'meshward-npm-start-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Direct children of `pid` (from /proc), so the test can find the node process npm started. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2]!.startsWith('Z');
  } catch {
    return false;
  }
}

describe.skipIf(!built)('npm start', () => {
  it('stops meshward when npm receives SIGTERM: no node process left serving, ports free', async () => {
    const [grpc, http] = [await freePort(), await freePort()];
    const npm = spawn('npm', ['start', '--silent'], {
      env: { ...process.env, MESHWARD_DATA_DIR: path.join(scratch, 'data'), MESHWARD_GRPC_ADDR: `127.0.0.1:${grpc}`, MESHWARD_HTTP_ADDR: `127.0.0.1:${http}`, MESHWARD_WATCH_CONFIG: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    npm.stdout.on('data', (b: Buffer) => { log += b.toString(); });
    npm.stderr.on('data', (b: Buffer) => { log += b.toString(); });
    const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
    const ready = await new Promise<boolean>((resolve) => {
      const t = setInterval(() => { if (log.includes('"msg":"meshward serving"')) { clearInterval(t); resolve(true); } }, 100);
      void exited.then(() => { clearInterval(t); resolve(false); });
    });
    expect(ready, log).toBe(true);
    const started = descendants(npm.pid!);
    const cmdline = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } };
    expect(started.map(cmdline).some((c) => c.includes('bin/meshward.js')), 'npm started no meshward process').toBe(true);
    npm.kill('SIGTERM');
    await exited;
    // meshward drains and exits within a few seconds of the signal.
    const deadline = Date.now() + 15_000;
    while (started.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const orphans = started.filter(alive);
    for (const pid of orphans) process.kill(pid, 'SIGKILL'); // leave nothing behind, then fail
    expect(orphans, log).toEqual([]);
    expect(await portIsFree(http)).toBe(true);
    expect(await portIsFree(grpc)).toBe(true);
  }, 60_000);
});
