/**
 * `meshward serve` as a process, when it cannot start: a busy gRPC or HTTP port, or a TLS key that
 * does not match its certificate. Each must print one clear line, exit with the catalog's code and
 * leave nothing listening (the process used to hang, bound to nothing, ignoring SIGTERM).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../helpers/config.ts';
import { createTestCa } from '../helpers/tls.ts';

const BIN = 'bin/meshward-dev.js'; // the sources through tsx, never a stale dist/
const dirs: string[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  dirs.splice(0).forEach(removeDir);
});

function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = await listen();
  const port = portOf(s);
  await new Promise((r) => s.close(r));
  return port;
}

/** True when `port` can be bound again (the failed process left nothing on it). */
async function isFree(port: number): Promise<boolean> {
  try {
    const s = await listen(port);
    await new Promise((r) => s.close(r));
    return true;
  } catch {
    return false;
  }
}

interface Exit { code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }

/** Runs `serve`; if it has not exited after `limitMs`, kills it with SIGKILL and reports that. */
function serve(args: string[], limitMs = 20_000): Promise<Exit> {
  const dataDir = tempDir('mw-start-');
  dirs.push(dataDir);
  const child = spawn(process.execPath, [BIN, 'serve', '--config', 'policies', '--data', path.join(dataDir, 'data'), '--no-watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(kill);
    resolve({ code, signal, stderr, stdout });
  }));
}

describe('meshward serve that cannot start', () => {
  it('exits 75 with one line naming the busy gRPC port, and binds nothing', async () => {
    const taken = await listen();
    servers.push(taken);
    const httpPort = await freePort();
    const r = await serve(['--grpc-addr', `127.0.0.1:${portOf(taken)}`, '--http-addr', `127.0.0.1:${httpPort}`]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(new RegExp(`^meshward serve: the gRPC address 127\\.0\\.0\\.1:${portOf(taken)} is already in use \\(another process listens on it\\)[^\\n]*\\n$`));
    expect(await isFree(httpPort)).toBe(true);
  });

  it('exits 75 naming the busy HTTP port, and releases the gRPC port it had bound', async () => {
    const taken = await listen();
    servers.push(taken);
    const grpcPort = await freePort();
    const r = await serve(['--grpc-addr', `127.0.0.1:${grpcPort}`, '--http-addr', `127.0.0.1:${portOf(taken)}`]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(new RegExp(`^meshward serve: the HTTP address 127\\.0\\.0\\.1:${portOf(taken)} is already in use[^\\n]*\\n$`));
    expect(r.stdout).not.toContain('"meshward serving"');
    expect(await isFree(grpcPort)).toBe(true);
  });

  it('exits 75 naming the busy unary gRPC port and its flag, and releases the other ports', async () => {
    const taken = await listen();
    servers.push(taken);
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const r = await serve(['--grpc-addr', `127.0.0.1:${grpcPort}`, '--http-addr', `127.0.0.1:${httpPort}`, '--unary-grpc-addr', `127.0.0.1:${portOf(taken)}`]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(new RegExp(`^meshward serve: the unary gRPC address 127\\.0\\.0\\.1:${portOf(taken)} is already in use[^\\n]*--unary-grpc-addr[^\\n]*\\n$`));
    expect(r.stdout).not.toContain('"meshward serving"');
    expect(await isFree(grpcPort)).toBe(true);
    expect(await isFree(httpPort)).toBe(true);
  });

  it('exits 78 naming the key file when the TLS key does not match the certificate, and binds nothing', async () => {
    const dir = tempDir('mw-start-tls-');
    dirs.push(dir);
    const ca = await createTestCa();
    const leaf = await ca.sign({ ip: ['127.0.0.1'] });
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const certFile = path.join(dir, 'server.pem');
    const keyFile = path.join(dir, 'server-key.pem');
    writeFileSync(certFile, leaf.certPem);
    writeFileSync(keyFile, otherKey, { mode: 0o600 });
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const r = await serve(['--grpc-addr', `127.0.0.1:${grpcPort}`, '--http-addr', `127.0.0.1:${httpPort}`, '--grpc-tls-cert', certFile, '--grpc-tls-key', keyFile]);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`meshward serve: ${keyFile}: the private key does not match the certificate in ${certFile}\n`);
    expect(r.stdout + r.stderr).not.toContain('BEGIN');
    expect(await isFree(grpcPort)).toBe(true);
    expect(await isFree(httpPort)).toBe(true);
  });
});
