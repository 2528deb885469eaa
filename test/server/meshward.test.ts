import { credentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthClient } from '../helpers/health.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { removeDir, tempDir } from '../helpers/config.ts';

const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

async function start(): Promise<{ mw: Meshward; dataDir: string }> {
  const dataDir = tempDir('mw-data-');
  dirs.push(dataDir);
  const mw = await createMeshward(
    { configDir: 'policies', dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [] },
  );
  running.push(mw);
  await mw.start();
  return { mw, dataDir };
}

describe('meshward serve (in-process)', () => {
  it('answers health, readiness, metrics and the config summary over HTTP', async () => {
    const { mw } = await start();
    expect((await mw.http.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await mw.http.inject('/readyz')).statusCode).toBe(200);
    const metrics = await mw.http.inject('/metrics');
    expect(metrics.body).toContain(`meshward_config_info{version="${mw.config.current().version}"} 1`);
    const auditor = { authorization: `Bearer ${mw.apiAuth.createToken('config-reader', 'auditor')}` };
    const config = (await mw.http.inject({ url: '/v1/config', headers: auditor })).json() as { version: string; documents: { kind: string }[] };
    expect(config.version).toBe(mw.config.current().version);
    expect(config.documents.filter((d) => d.kind === 'Service')).toHaveLength(3);
  });

  it('serves grpc.health.v1.Health as SERVING on the gRPC port', async () => {
    const { mw } = await start();
    const client = new HealthClient(mw.addresses.grpc, credentials.createInsecure());
    const status = await new Promise<string>((resolve, reject) => client.check({ service: '' }, (err: Error | null, res?: { status: string }) => (err ? reject(err) : resolve(res!.status))));
    client.close();
    expect(status).toBe('SERVING');
  });

  it('requires an operator or admin token to reload the configuration', async () => {
    const { mw, dataDir } = await start();
    const anonymous = await mw.http.inject({ method: 'POST', url: '/v1/config/reload' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Bearer');
    const wrong = await mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: 'Bearer mw_wrong' } });
    expect(wrong.statusCode).toBe(401);
    const auditor = mw.apiAuth.createToken('carol', 'auditor');
    const forbidden = await mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: `Bearer ${auditor}` } });
    expect(forbidden.statusCode).toBe(403);
    const admin = readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
    const ok = await mw.http.inject({ method: 'POST', url: '/v1/config/reload', headers: { authorization: `Bearer ${admin}` } });
    expect(ok.json()).toEqual({ changed: false, version: mw.config.current().version });
  });

  it('writes the generated admin token and token store readable by the owner only', async () => {
    const { dataDir } = await start();
    const { statSync } = await import('node:fs');
    expect(statSync(path.join(dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'api-tokens.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dataDir, 'api-tokens.json'), 'utf8')).not.toContain(readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim());
  });

  it('reports not ready while a capability is not ready', async () => {
    const dataDir = tempDir('mw-data-');
    dirs.push(dataDir);
    let ready = false;
    const mw = await createMeshward(
      { configDir: 'policies', dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), capabilities: [() => ({ name: 'slow', ready: () => ready })] },
    );
    running.push(mw);
    await mw.start();
    const res = await mw.http.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'not ready', pending: ['slow'] });
    ready = true;
    expect((await mw.http.inject('/readyz')).statusCode).toBe(200);
  });

  it('stops capabilities in reverse order after the servers stop accepting', async () => {
    const dataDir = tempDir('mw-data-');
    dirs.push(dataDir);
    const order: string[] = [];
    const mw = await createMeshward(
      { configDir: 'policies', dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), capabilities: ['a', 'b'].map((name) => () => ({ name, stop: async () => { order.push(name); } })) },
    );
    await mw.start();
    await mw.stop();
    expect(order).toEqual(['b', 'a']);
    await expect(mw.http.inject('/healthz')).rejects.toThrow();
  });
});
