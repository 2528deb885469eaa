/**
 * Credentials are checked before a request body is read: a client without a valid token cannot
 * hold a connection open by sending its body slowly (500 such connections were held for 70 s).
 */
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir } from '../helpers/config.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(): Promise<Meshward> {
  const dir = tempDir('mw-api-body-');
  dirs.push(dir);
  const mw = await createMeshward(
    { configDir: tempDir('mw-api-body-config-'), dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [] },
  );
  running.push(mw);
  await mw.start();
  return mw;
}

interface Answer { response: string; closed: boolean }

/**
 * Sends the head of a POST announcing a 100 kB body and only the first bytes of that body, then
 * waits up to `waitMs` for an answer and for the server to close the connection.
 */
function slowBodyPost(address: string, headers: Record<string, string>, waitMs = 5000): Promise<Answer> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    let response = '';
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ response, closed });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (c: Buffer) => (response += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
    const head = Object.entries({ host: address, 'content-type': 'application/json', 'content-length': '100000', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`POST /v1/config/reload HTTP/1.1\r\n${head}\r\n{"a":`);
  });
}

describe('HTTP API authentication before the body', () => {
  it('answers 401 without waiting for the body when no credentials are sent, and closes the connection', async () => {
    const mw = await start();
    const answer = await slowBodyPost(mw.addresses.http, {});
    expect(answer.response).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.response).toContain('"code":"UNAUTHENTICATED"');
    expect(answer.closed).toBe(true);
  });

  it('answers 401 before the body for a token that is not valid, and 403 for a valid token of the wrong role', async () => {
    const mw = await start();
    const invalid = await slowBodyPost(mw.addresses.http, { authorization: 'Bearer mw_not-a-token' });
    expect(invalid.response).toMatch(/^HTTP\/1\.1 401 /);
    expect(invalid.closed).toBe(true);
    const auditor = await slowBodyPost(mw.addresses.http, { authorization: `Bearer ${mw.apiAuth.createToken('alice', 'auditor')}` });
    expect(auditor.response).toMatch(/^HTTP\/1\.1 403 /);
    expect(auditor.closed).toBe(true);
  });

  it('still serves an authorised request with its body', async () => {
    const mw = await start();
    const token = mw.apiAuth.createToken('op', 'operator');
    const res = await fetch(`http://${mw.addresses.http}/v1/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ changed: false });
  });

  it('bounds how long a request may take to arrive', async () => {
    const mw = await start();
    expect(mw.http.server.requestTimeout).toBeGreaterThan(0);
    expect(mw.http.server.requestTimeout).toBeLessThanOrEqual(30_000);
    expect(mw.http.server.headersTimeout).toBeLessThan(mw.http.server.requestTimeout);
  });
});
