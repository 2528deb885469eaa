import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { doc, removeDir, SERVICE_ORDERS, tempDir, writeConfigDir } from '../helpers/config.ts';

const BIN = 'bin/meshward-dev.js'; // the sources through tsx, never a stale dist/
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshward CLI', () => {
  it('prints its version', () => {
    const r = run(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^meshward \d+\.\d+\.\d+/);
  });

  it('validates the sample configuration', () => {
    const r = run(['config', 'validate', 'policies']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/policies: valid \(\d+ documents, version [0-9a-f]{16}\)/);
  });

  it('exits 1 with file:line errors for a broken configuration', () => {
    const dir = writeConfigDir({
      'svc.yaml': SERVICE_ORDERS,
      'route.yaml': doc('Route', 'r', 'hosts: [orders]\nhttp:\n  - route:\n      - destination: { host: payments }', 'shop'),
      'authz.yaml': doc('AuthorizationPolicy', 'a', 'action: ALLOW\nrules:\n  - when:\n      - key: request.colour\n        values: [blue]'),
    });
    dirs.push(dir);
    const r = run(['config', 'validate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/authz\.yaml:10: spec\.rules\[0\]\.when\[0\]\.key: unknown condition key "request\.colour"/);
    expect(r.stderr).toMatch(/route\.yaml:10: spec\.http\[0\]\.route\[0\]\.destination\.host: Service "payments" not found/);
    expect(r.stderr).toMatch(/2 errors/);
  });

  it('prints machine-readable results with --json', () => {
    const r = run(['config', 'validate', '--json', 'policies']);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true });
  });

  it('exits 2 on an unknown command or option, with usage', () => {
    expect(run(['frobnicate']).code).toBe(2);
    const r = run(['config', 'validate', '--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: meshward config validate');
  });
});

describe('meshward serve (process)', () => {
  it('serves health on the configured ports and exits 0 on SIGTERM after draining', async () => {
    const dataDir = tempDir('mw-data-');
    dirs.push(dataDir);
    const child = spawn(process.execPath, [BIN, 'serve', '--config', 'policies', '--data', dataDir, '--no-watch'], {
      env: { ...process.env, MESHWARD_GRPC_ADDR: '127.0.0.1:0', MESHWARD_HTTP_ADDR: '127.0.0.1:0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const serving = new Promise<{ http: string }>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.includes('"meshward serving"'));
        if (line) resolve(JSON.parse(line) as { http: string });
      });
      child.on('exit', (code) => reject(new Error(`exited ${code} before serving: ${out}`)));
    });
    const { http } = await serving;
    const res = await fetch(`http://${http}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('"meshward stopped"');
  });
});
