import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { createTestCa } from '../helpers/tls.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

function get(url: string, opts: https.RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, opts, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('HTTPS API with optional client certificates', () => {
  it('serves over TLS and lets a verifier authenticate a client certificate by its SPIFFE ID', async () => {
    const dir = tempDir('mw-tls-');
    dirs.push(dir);
    const ca = await createTestCa();
    const server = await ca.sign({ dns: ['localhost'], ip: ['127.0.0.1'] });
    const auditor = await ca.sign({ uri: 'spiffe://cluster.local/ns/audit/sa/auditor' });
    for (const [name, pem] of Object.entries({ 'ca.pem': ca.certPem, 'server.pem': server.certPem, 'server-key.pem': server.keyPem })) writeFileSync(path.join(dir, name), pem, { mode: 0o600 });

    const mw = await createMeshward(
      { configDir: 'policies', dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false,
        httpTls: { certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server-key.pem'), clientCaFile: path.join(dir, 'ca.pem') } },
      { logger: silentLogger(), registry: createRegistry(), capabilities: [] },
    );
    running.push(mw);
    mw.apiAuth.addVerifier((req) => {
      const socket = req.raw.socket as TLSSocket;
      if (!socket.authorized) return undefined;
      const san = socket.getPeerCertificate().subjectaltname ?? '';
      return san.includes('URI:spiffe://cluster.local/ns/audit/sa/auditor') ? { name: 'auditor-cert', role: 'operator' } : undefined;
    });
    await mw.start();
    const base = `https://${mw.addresses.http}`;
    const anonymous = await get(`${base}/healthz`, { ca: ca.certPem });
    expect(anonymous).toEqual({ status: 200, body: '{"status":"ok"}' });

    const reloadAs = (opts: https.RequestOptions) => new Promise<number>((resolve, reject) => {
      const req = https.request(`${base}/v1/config/reload`, { method: 'POST', ...opts }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
    expect(await reloadAs({ ca: ca.certPem })).toBe(401);
    expect(await reloadAs({ ca: ca.certPem, cert: auditor.certPem, key: auditor.keyPem })).toBe(200);
  });
});
