/**
 * `serve --metrics-auth`: GET /metrics needs an operator, auditor or admin token; without the flag
 * it stays public (Prometheus scrapes without a token by default).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../../src/cli/options.ts';
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

async function start(metricsAuth: boolean): Promise<Meshward> {
  const dir = tempDir('mw-metrics-auth-');
  dirs.push(dir);
  const mw = await createMeshward(
    { configDir: 'policies', dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, metricsAuth },
    { logger: silentLogger(), registry: createRegistry() },
  );
  running.push(mw);
  await mw.start();
  return mw;
}

const scrape = (mw: Meshward, token?: string) => mw.http.inject({ method: 'GET', url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('GET /metrics', () => {
  it('is public by default', async () => {
    const mw = await start(false);
    const res = await scrape(mw);
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('meshward_grpc_connections');
  });

  it('with --metrics-auth, refuses a scrape without a valid token and serves operator, auditor and admin tokens', async () => {
    const mw = await start(true);
    expect((await scrape(mw)).statusCode).toBe(401);
    expect((await scrape(mw)).json().code).toBe('UNAUTHENTICATED');
    expect((await scrape(mw, 'mw_not-a-token')).statusCode).toBe(401);
    for (const role of ['operator', 'auditor', 'admin'] as const) {
      const res = await scrape(mw, mw.apiAuth.createToken(`prometheus-${role}`, role));
      expect(res.statusCode, role).toBe(200);
      expect(res.headers['content-type'], role).toMatch(/^text\/plain/);
      expect(res.body, role).toContain('meshward_grpc_connections');
    }
  });

  it('reads --metrics-auth or MESHWARD_METRICS_AUTH=true', () => {
    expect(resolveServeOptions({ 'metrics-auth': true }, {}).metricsAuth).toBe(true);
    expect(resolveServeOptions({}, { MESHWARD_METRICS_AUTH: 'true' }).metricsAuth).toBe(true);
    expect(resolveServeOptions({}, { MESHWARD_METRICS_AUTH: 'no' }).metricsAuth).toBe(false);
    expect(resolveServeOptions({}, {}).metricsAuth).toBe(false);
  });
});
