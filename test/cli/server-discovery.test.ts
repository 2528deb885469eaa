/**
 * Commands that talk to a running server find it the same way (cli/server.ts): its address from
 * `<data>/serve.lock`, the admin token from `<data>/admin.token`. `ca rotate --offline` is refused
 * while a live server holds the data dir, allowed when the lock is stale; rotations default to a
 * safe activation delay.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireServeLock } from '../../src/server/serve-lock.ts';
import { cli } from '../helpers/cli.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

const BIN = 'bin/meshward-dev.js';
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function setup() {
  const data = tempDir('mw-data-');
  const config = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: corp.example') });
  dirs.push(data, config);
  return { data, config };
}

/** A pid that no process has any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('serve.lock', () => {
  it('a running serve records its pid and addresses; ca rotate and proxy status find it there with the admin token, and --offline is refused', async () => {
    const { data, config } = setup();
    const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--data', data, '--no-watch', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (b: Buffer) => { log += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { log += b.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await expect.poll(() => log.includes('"msg":"meshward serving"') || child.exitCode !== null, { timeout: 30_000 }).toBe(true);
      const lock = JSON.parse(readFileSync(path.join(data, 'serve.lock'), 'utf8')) as { pid: number; host: string; http: string; grpc: string };
      expect(lock).toMatchObject({ pid: child.pid, host: hostname() });
      expect(log).toContain(`"http":"${lock.http}"`);

      // No --http-addr, no token flag: both commands find the server and the token the same way.
      const status = await cli(['proxy', 'status', '-d', data]);
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/0 proxies connected/);
      const rotate = await cli(['ca', 'rotate', '-d', data, '-c', config, '--json']);
      expect(rotate.stderr).toBe('');
      expect(rotate.code).toBe(0);
      const prepared = (JSON.parse(rotate.stdout) as { slots: { state: string; activateAt?: string }[] }).slots.find((s) => s.state === 'prepared');
      expect(Date.parse(prepared!.activateAt!) - Date.now()).toBeGreaterThan(5 * 60_000); // the safe default, not 0

      const offline = await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config]);
      expect(offline.code).toBe(75);
      expect(offline.stderr).toMatch(new RegExp(`DATA_DIR_IN_USE|running server holds .*pid ${child.pid}`));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, log).toBe(0);
    expect(existsSync(path.join(data, 'serve.lock'))).toBe(false);
  }, 60_000);

  it('refuses ca rotate --offline while a live process holds the data dir, and allows it once that process is gone', async () => {
    const { data, config } = setup();
    expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
    const lock = (pid: number) => writeFileSync(path.join(data, 'serve.lock'), JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString(), http: '127.0.0.1:1' }));
    lock(process.pid); // alive
    const refused = await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config]);
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain(`pid ${process.pid}`);
    expect(JSON.parse(readFileSync(path.join(data, 'ca', 'journal.json'), 'utf8')).slots).toHaveLength(1);
    // Without --offline, a server that holds the dir but does not answer is an error too, not a reason to go offline.
    const unanswered = await cli(['ca', 'rotate', '-d', data, '-c', config], { MESHWARD_ADMIN_TOKEN: 'mw_x' });
    expect(unanswered.code).toBe(75);
    expect(unanswered.stderr).toMatch(/does not answer at http:\/\/127\.0\.0\.1:1/);

    lock(deadPid()); // stale
    const allowed = await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config]);
    expect(allowed.stderr).toBe('');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(/--activate-after 6m/);
    const journal = JSON.parse(readFileSync(path.join(data, 'ca', 'journal.json'), 'utf8')) as { slots: { state: string; activateAt?: number }[] };
    const prepared = journal.slots.find((s) => s.state === 'prepared');
    expect(prepared!.activateAt! - Date.now()).toBeGreaterThan(5 * 60_000);
  });

  it('refuses a second serve on a data dir a live server holds, and takes over a stale lock', () => {
    const data = tempDir('mw-data-');
    dirs.push(data);
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(data, 'serve.lock'), JSON.stringify({ pid: other.pid, host: hostname(), startedAt: new Date().toISOString() }));
      expect(() => acquireServeLock(data)).toThrow(expect.objectContaining({ code: 'DATA_DIR_IN_USE', message: expect.stringContaining(`pid ${other.pid}`) }));
    } finally {
      other.kill('SIGKILL');
    }
    writeFileSync(path.join(data, 'serve.lock'), JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: new Date().toISOString() }));
    const lock = acquireServeLock(data);
    expect(lock.replaced).toBeUndefined();
    expect(JSON.parse(readFileSync(path.join(data, 'serve.lock'), 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    expect(existsSync(path.join(data, 'serve.lock'))).toBe(false);
  });

  it('serve takes over a lock written on another host (a pod killed on another node), while offline commands refuse it', async () => {
    const { data, config } = setup();
    expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
    const elsewhere = { pid: process.pid, host: 'another-node', startedAt: new Date().toISOString() };
    writeFileSync(path.join(data, 'serve.lock'), JSON.stringify(elsewhere));
    expect((await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config])).code).toBe(75);
    const lock = acquireServeLock(data);
    expect(lock.replaced).toMatchObject({ host: 'another-node' });
    expect(JSON.parse(readFileSync(path.join(data, 'serve.lock'), 'utf8'))).toMatchObject({ host: hostname() });
    lock.release();
  });

  it('activates at once only when asked to (--activate-after 0)', async () => {
    const { data, config } = setup();
    expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
    const r = await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config, '--activate-after', '0s', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { slots: { state: string }[] }).slots.filter((s) => s.state === 'active')).toHaveLength(1);
  });
});
