import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import { runCli, type CliIo } from '../../src/cli/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { createTestCa } from '../helpers/tls.ts';
import { MeshwardProcess, ORDERS } from './harness.ts';

let mw: MeshwardProcess | undefined;
let agent: Agent | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await agent?.stop();
  await mw?.close();
  for (const d of dirs.splice(0)) removeDir(d);
  agent = undefined;
  mw = undefined;
});

function io(): CliIo & { err: string } {
  const captured = { err: '' };
  return Object.assign(captured, { stdout: () => {}, stderr: (t: string) => { captured.err += t; }, env: {}, cwd: process.cwd() });
}

/** meshward over TLS (both gRPC ports and the HTTP API) with a certificate from a test CA, and an orders token file. */
async function meshwardOverTls(prefix: string): Promise<{ meshward: MeshwardProcess; ca: Awaited<ReturnType<typeof createTestCa>>; tokenFile: string }> {
  const dir = tempDir(prefix);
  dirs.push(dir);
  const ca = await createTestCa();
  const server = await ca.sign({ ip: ['127.0.0.1'], dns: ['localhost'] });
  const tls = { certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server-key.pem') };
  writeFileSync(tls.certFile, server.certPem);
  writeFileSync(tls.keyFile, server.keyPem, { mode: 0o600 });
  const meshward = new MeshwardProcess('');
  mw = meshward;
  meshward.tls = tls;
  meshward.unaryAddress = '127.0.0.1:0';
  await meshward.start();
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, await meshward.token('shop', 'orders'));
  return { meshward, ca, tokenFile };
}

describe('agent transport to meshward', () => {
  it('gets its SVID and the bundle over TLS with --meshward-ca, and fails (not ready) with a CA that did not sign meshward', async () => {
    const { meshward, ca, tokenFile } = await meshwardOverTls('mw-agent-tls-');
    const base = { grpcAddress: meshward.grpcAddress, apiUrl: meshward.apiUrl, tokenFile, logger: silentLogger(), clock: meshward.clock };
    agent = await startAgent({ ...base, caPem: ca.certPem });
    const svid = await agent.identity.ready(10_000);
    expect(svid.spiffeId).toBe(ORDERS);
    expect(agent.identity.bundle().sequence).toBeGreaterThan(0);
    expect((await agent.identity.jwtBundle()).trustDomain).toBe('example.org');
    await agent.stop();
    const other = await createTestCa('another CA');
    agent = await startAgent({ ...base, caPem: other.certPem });
    await vi.waitFor(() => expect(agent!.identity.health().consecutiveFailures).toBeGreaterThan(0), { timeout: 10_000 });
    expect(agent.identity.health().state).toBe('not_ready');
  });

  it('sends its CSRs to the unary port over TLS when given --unary-meshward', async () => {
    const { meshward, ca, tokenFile } = await meshwardOverTls('mw-agent-unary-');
    // The gRPC port given is closed: the SVID can only come from the unary port.
    agent = await startAgent({ grpcAddress: '127.0.0.1:1', unaryGrpcAddress: meshward.unaryAddress!, apiUrl: meshward.apiUrl, tokenFile, logger: silentLogger(), clock: meshward.clock, caPem: ca.certPem });
    expect((await agent.identity.ready(10_000)).spiffeId).toBe(ORDERS);
  });

  it('refuses plaintext unless asked for, and to anything but loopback', async () => {
    const dir = tempDir('mw-agent-cli-');
    dirs.push(dir);
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, 'x');
    const run = async (args: string[]) => {
      const out = io();
      return { code: await runCli(['agent', ...args], out), err: out.err };
    };
    expect(await run([])).toMatchObject({ code: 2, err: expect.stringContaining('--token-file is required') });
    expect(await run(['--token-file', tokenFile, '--meshward', '127.0.0.1:1'])).toMatchObject({ code: 2, err: expect.stringContaining('--meshward-ca') });
    expect(await run(['--token-file', tokenFile, '--meshward', '10.1.2.3:15010', '--plaintext'])).toMatchObject({ code: 2, err: expect.stringContaining('not a loopback address') });
    expect(await run(['--token-file', tokenFile, '--meshward', '127.0.0.1:1', '--unary-meshward', '10.1.2.3:15011', '--plaintext'])).toMatchObject({ code: 2, err: expect.stringContaining('10.1.2.3 is not a loopback address') });
    expect(await run(['--token-file', tokenFile, '--meshward', '127.0.0.1:1', '--plaintext', '--socket-mode', '0666'])).toMatchObject({ code: 2, err: expect.stringContaining('0600 or 0660') });
  });
});
