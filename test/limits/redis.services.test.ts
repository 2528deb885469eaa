import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { type LimitsCapability, createLimitsCapability } from '../../src/limits/index.ts';
import { RedisBackend } from '../../src/limits/redis.ts';
import { RLS_SERVICE } from '../../src/limits/rls.ts';
import { type Meshward, createMeshward } from '../../src/meshward.ts';
import { removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';
import { createLimitsRedis, loadRedisClass, redisReady } from '../../src/limits/redis-client.ts';
import { REDIS_URL, describeWithRedis } from '../helpers/services.ts';
import { limitBackendContract } from './backend-contract.ts';
import { engineFor, entries, rateLimitPolicy } from './helpers.ts';
import { freePort } from '../helpers/ports.ts';
import { ThrowawayRedis } from './redis-server.ts';

const POLICY = rateLimitPolicy('shared', `  domain: shared
  descriptors:
    - key: user
      rate_limit: { unit: minute, requests_per_unit: 3 }
`);

describeWithRedis('redis backend', () => {
  const run = randomBytes(4).toString('hex');
  const clients: Redis[] = [];
  const client = async () => {
    const c = createLimitsRedis({ url: REDIS_URL!, timeoutMs: 500, logger: silentLogger(), registry: createRegistry(), role: 'test' }, await loadRedisClass());
    clients.push(c);
    return c;
  };
  let shared: Redis;

  beforeAll(async () => {
    shared = await client();
    await redisReady(shared, 5000);
  });

  afterAll(async () => {
    const admin = new Redis(REDIS_URL!);
    const keys = await admin.keys(`mwtest:${run}:*`);
    if (keys.length) await admin.del(...keys);
    admin.disconnect();
    for (const c of clients) c.disconnect();
  });

  let n = 0;
  limitBackendContract(() => ({ backend: new RedisBackend(shared, { keyPrefix: `mwtest:${run}:` }), prefix: `c${n++}:` }));

  it('shares one limit between two meshward instances (separate connections, same Redis)', async () => {
    const a = await client();
    const b = await client();
    await Promise.all([redisReady(a, 5000), redisReady(b, 5000)]);
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const one = engineFor(POLICY, new RedisBackend(a, { keyPrefix: `mwtest:${run}:two:` }), { clock }).engine;
    const two = engineFor(POLICY, new RedisBackend(b, { keyPrefix: `mwtest:${run}:two:` }), { clock }).engine;
    const q = { domain: 'shared', descriptors: [{ entries: entries(['user', 'alice']) }] };
    const got = [];
    for (const e of [one, two, one, two]) got.push((await e.shouldRateLimit(q)).overall);
    expect(got).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
    // Descriptor values (principals, API keys) never appear in Redis keys.
    const admin = new Redis(REDIS_URL!);
    const keys = await admin.keys(`mwtest:${run}:two:*`);
    admin.disconnect();
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.join(' ')).not.toContain('alice');
    // Another value has its own counter on both instances.
    expect((await two.shouldRateLimit({ domain: 'shared', descriptors: [{ entries: entries(['user', 'bob']) }] })).overall).toBe('OK');
  });
});

describeWithRedis('redis outage (a second redis-server, killed mid-test)', () => {
  let server: ThrowawayRedis;
  let redis: Redis;
  const registry = createRegistry();

  beforeAll(async () => {
    server = new ThrowawayRedis(await freePort());
    await server.start();
    redis = createLimitsRedis({ url: server.url, timeoutMs: 50, logger: silentLogger(), registry, role: 'outage' }, await loadRedisClass());
    await redisReady(redis, 5000);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.kill();
  });

  const up = async () => (await registry.getSingleMetric('meshward_limits_redis_up')!.get()).values.find((v) => v.labels.role === 'outage')?.value;

  it('fails open (default) or closed without stalling, reports it, and recovers by itself', async () => {
    const backend = new RedisBackend(redis, { keyPrefix: 'mwtest:outage:' });
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 30));
    const open = engineFor(POLICY, backend, { clock }).engine;
    const closed = engineFor(POLICY, backend, { clock, failureMode: 'closed' }).engine;
    const q = { domain: 'shared', descriptors: [{ entries: entries(['user', 'carol']) }] };

    expect((await open.shouldRateLimit(q)).statuses[0]!.failedOver).toBeUndefined();
    expect(await up()).toBe(1);

    await server.kill();
    await vi.waitFor(async () => expect(await up()).toBe(0), { timeout: 5000, interval: 20 });
    expect(backend.healthy()).toBe(false);

    const whileDown = await open.shouldRateLimit(q);
    expect(whileDown.overall).toBe('OK');
    expect(whileDown.statuses[0]!.failedOver).toBe('open');
    const closedDown = await closed.shouldRateLimit(q);
    expect(closedDown.overall).toBe('OVER_LIMIT');
    expect(closedDown.statuses[0]!.failedOver).toBe('closed');

    // Redis comes back on the same port: the client reconnects on its own, counting resumes.
    await server.start();
    await vi.waitFor(() => expect(backend.healthy()).toBe(true), { timeout: 10_000, interval: 50 });
    expect(await up()).toBe(1);
    const after = await open.shouldRateLimit(q);
    expect(after.statuses[0]!.failedOver).toBeUndefined();
    expect(after.statuses[0]!.remaining).toBe(2);
  });
});

describeWithRedis('two meshward instances with backend: redis', () => {
  const running: Meshward[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(running.map((m) => m.stop()));
    dirs.forEach(removeDir);
  });

  it('enforce one shared limit over the RLS API', async () => {
    const domain = `two-${randomBytes(3).toString('hex')}`;
    const configDir = writeConfigDir({
      'mesh.yaml': 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  limits: { backend: redis, failureMode: closed, timeout: 500ms }\n',
      'rl.yaml': rateLimitPolicy('two', `  domain: ${domain}\n  algorithm: fixed-window\n  descriptors:\n    - key: user\n      rate_limit: { unit: hour, requests_per_unit: 3 }`),
    });
    dirs.push(configDir);
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 10, 30));
    const instances: Meshward[] = [];
    for (let i = 0; i < 2; i++) {
      const dataDir = tempDir('mw-limits-two-');
      dirs.push(dataDir);
      const mw = await createMeshward(
        { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, redisUrl: REDIS_URL! },
        { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [createLimitsCapability] },
      );
      running.push(mw);
      instances.push(mw);
      await mw.start();
    }
    const backends = instances.map((mw) => mw.capability<LimitsCapability>('limits')!.engine.backend);
    await vi.waitFor(() => expect(backends.every((b) => b.healthy())).toBe(true), { timeout: 5000 });
    const Client = envoyService(RLS_SERVICE);
    const clients = instances.map((mw) => new Client(mw.addresses.grpc, credentials.createInsecure()) as unknown as { ShouldRateLimit(r: object, cb: (e: Error | null, r: { overall_code: string }) => void): void; close(): void });
    const call = (i: number) => new Promise<string>((resolve, reject) => clients[i]!.ShouldRateLimit({ domain, descriptors: [{ entries: [{ key: 'user', value: 'zoe' }] }] }, (e, r) => (e ? reject(e) : resolve(r.overall_code))));
    const got = [await call(0), await call(1), await call(0), await call(1)];
    clients.forEach((c) => c.close());
    expect(got).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
  });
});
