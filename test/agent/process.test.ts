import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer } from 'node:net';
import { type FakeClock, systemClock } from '../../src/lib/clock.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { reader, SECRET_TYPE, type SdsClient } from '../sds/harness.ts';
import { MeshwardProcess, noMetadata, ORDERS } from './harness.ts';

let mw: MeshwardProcess | undefined;
let child: ChildProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  child?.kill('SIGKILL');
  await mw?.close();
  if (dir) removeDir(dir);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('meshward agent (the CLI, as a process)', () => {
  it('serves SDS on its socket, reports ready, and on SIGTERM exits 0 and removes the socket', async () => {
    dir = tempDir('mw-agent-proc-');
    // A real clock, as the agent process has (advance() is never called here).
    mw = new MeshwardProcess('', systemClock as unknown as FakeClock);
    await mw.start();
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, await mw.token('shop', 'orders'));
    const socket = path.join(dir, 'sds.sock');
    const health = `127.0.0.1:${await freePort()}`;
    child = spawn(process.execPath, ['bin/meshward-dev.js', 'agent', '--token-file', tokenFile, '--meshward', mw.grpcAddress, '--meshward-api', mw.apiUrl, '--plaintext', '--sds-socket', socket, '--health-addr', health], { stdio: 'ignore', env: { ...process.env, MESHWARD_LOG_LEVEL: 'silent' } });
    await vi.waitFor(async () => expect((await fetch(`http://${health}/healthz`)).status).toBe(200), { timeout: 20_000, interval: 200 });
    const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
    const client = new Ctor(`unix:${socket}`, credentials.createInsecure()) as unknown as SdsClient;
    const stream = client.StreamSecrets(noMetadata());
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
    const first = await r.next();
    expect(first.resources[0]!.tls_certificate!.certificate_chain.inline_bytes.toString()).toContain('BEGIN CERTIFICATE');
    expect(await (await fetch(`http://${health}/healthz`)).json()).toMatchObject({ state: 'ready', spiffeId: ORDERS });
    stream.cancel();
    client.close();
    const exited = new Promise<number | null>((resolve) => child!.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    child = undefined;
    expect(existsSync(socket)).toBe(false);
  }, 40_000);
});
