/** `meshward serve` logs: text or JSON, and where a first start wrote the admin token (never the token). */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../helpers/config.ts';

const BIN = 'bin/meshward-dev.js'; // the sources through tsx, never a stale dist/
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

/** Starts serve on a fresh data dir, waits until it serves, stops it; returns its stdout. */
async function serveOnce(args: string[], env: Record<string, string> = {}): Promise<{ out: string; dataDir: string }> {
  const dataDir = tempDir('mw-logs-');
  dirs.push(dataDir);
  const child = spawn(process.execPath, [BIN, 'serve', '--config', 'policies', '--data', dataDir, '--no-watch', ...args], {
    env: { ...process.env, MESHWARD_GRPC_ADDR: '127.0.0.1:0', MESHWARD_HTTP_ADDR: '127.0.0.1:0', MESHWARD_LOG_FORMAT: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as unknown as ChildProcessWithoutNullStreams;
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('meshward serving')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`exited ${code} before serving: ${out}${err}`)));
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
  return { out, dataDir };
}

describe('meshward serve logs', () => {
  it('writes text lines with --log-format text, and says where the admin token was written', async () => {
    const { out, dataDir } = await serveOnce(['--log-format', 'text']);
    const tokenFile = path.join(dataDir, 'admin.token');
    expect(out).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}meshward serving grpc=127\.0\.0\.1:\d+ http=127\.0\.0\.1:\d+/m);
    expect(out).toMatch(new RegExp(`INFO  wrote an admin API token to ${tokenFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(mode 0600\\)`));
    expect(out.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
    expect(out).not.toContain(readFileSync(tokenFile, 'utf8').trim());
  }, 60_000);

  it('writes JSON lines when stdout is not a terminal, with the admin token path but not the token', async () => {
    const { out, dataDir } = await serveOnce([]);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; adminTokenFile?: string });
    expect(lines.find((l) => l.msg.startsWith('wrote an admin API token'))?.adminTokenFile).toBe(path.join(dataDir, 'admin.token'));
    expect(out).not.toContain(readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim());
  }, 60_000);

  it('refuses an unknown --log-format', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('log format "pretty" is not one of text, json');
  }, 60_000);
});
