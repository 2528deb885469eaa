/**
 * Which rate-limit backend serve uses: `limits.backend: auto` (the default, and the sample
 * mesh.yaml) follows --redis-url; an explicit `memory` or `redis` wins. The chosen backends are logged.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { credentials } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createLimitsCapability, type LimitsCapability } from '../../src/limits/index.ts';
import { counterScope } from '../../src/limits/engine.ts';
import type { RedisBackend } from '../../src/limits/redis.ts';
import { RLS_SERVICE } from '../../src/limits/rls.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { describeWithRedis, REDIS_URL } from '../helpers/services.ts';
import { rateLimitPolicy } from './helpers.ts';

const SAMPLE_MESH = readFileSync('policies/mesh.yaml', 'utf8');
const running: Meshward[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  dirs.splice(0).forEach(removeDir);
});

interface LogLine { msg: string; backend?: string; configured?: string }

async function serve(mesh: string, domain: string, redisUrl?: string): Promise<{ mw: Meshward; lines: LogLine[] }> {
  const configDir = writeConfigDir({
    'mesh.yaml': mesh,
    'rl.yaml': rateLimitPolicy('shared', `  domain: ${domain}\n  algorithm: fixed-window\n  descriptors:\n    - key: user\n      rate_limit: { unit: hour, requests_per_unit: 3 }`),
  });
  const dataDir = tempDir('mw-limits-choice-');
  dirs.push(configDir, dataDir);
  const lines: LogLine[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  const mw = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(redisUrl ? { redisUrl } : {}) },
    { logger: createLogger({ destination: sink }), registry: createRegistry(), capabilities: [createLimitsCapability] },
  );
  running.push(mw);
  await mw.start();
  return { mw, lines };
}

const backendOf = (mw: Meshward) => mw.capability<LimitsCapability>('limits')!.engine.backend;
const chosen = (lines: LogLine[]) => lines.find((l) => l.msg.startsWith('limits backends chosen'));

describe('limits backend choice', () => {
  it('keeps counters in memory with the sample config and no Redis URL, and logs it', async () => {
    const { mw, lines } = await serve(SAMPLE_MESH, 'solo');
    expect(backendOf(mw).kind).toBe('memory');
    expect(chosen(lines)).toMatchObject({ backend: 'memory', configured: 'auto' });
  });

  it('keeps an explicit backend: memory in memory although a Redis URL is given', async () => {
    const mesh = 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  limits: { backend: memory }\n';
    // Nothing listens on port 1: an explicit memory backend never connects.
    const { mw, lines } = await serve(mesh, 'solo', 'redis://127.0.0.1:1');
    expect(backendOf(mw).kind).toBe('memory');
    expect(chosen(lines)).toMatchObject({ backend: 'memory', configured: 'memory' });
  });
});

describeWithRedis('limits backend choice with Redis', () => {
  it('counts in Redis with the sample config when a Redis URL is given: one limit across two instances', async () => {
    const domain = `sample-${randomBytes(4).toString('hex')}`;
    const a = await serve(SAMPLE_MESH, domain, REDIS_URL!);
    const b = await serve(SAMPLE_MESH, domain, REDIS_URL!);
    for (const s of [a, b]) {
      expect(backendOf(s.mw).kind).toBe('redis');
      expect(chosen(s.lines)).toMatchObject({ backend: 'redis', configured: 'auto' });
    }
    await vi.waitFor(() => expect(backendOf(a.mw).healthy() && backendOf(b.mw).healthy()).toBe(true), { timeout: 5000 });
    const Client = envoyService(RLS_SERVICE);
    const clients = [a, b].map((s) => new Client(s.mw.addresses.grpc, credentials.createInsecure()) as unknown as { ShouldRateLimit(r: object, cb: (e: Error | null, r: { overall_code: string }) => void): void; close(): void });
    const call = (i: number) => new Promise<string>((resolve, reject) => clients[i]!.ShouldRateLimit({ domain, descriptors: [{ entries: [{ key: 'user', value: 'zoe' }] }] }, (e, r) => (e ? reject(e) : resolve(r.overall_code))));
    const got = [await call(0), await call(1), await call(0), await call(1)];
    clients.forEach((c) => c.close());
    // 3 per hour in total, not 3 per instance.
    expect(got).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
    // The counter is a real Redis key (its domain unique to this run).
    const backend = backendOf(a.mw) as RedisBackend;
    const key = backend.keyOf({ scope: counterScope(domain, [{ key: 'user', value: 'zoe' }]), value: 'zoe', algorithm: 'fixed-window', limit: 3, windowMs: 3_600_000, cost: 1 }, Date.now());
    const admin = new Redis(REDIS_URL!);
    try {
      expect(Number(await admin.get(key))).toBeGreaterThanOrEqual(3);
    } finally {
      await admin.del(key);
      admin.disconnect();
    }
  });
});
