import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { PostgresQuotaStore } from '../../src/limits/quota/postgres.ts';
import { RedisQuotaStore } from '../../src/limits/quota/redis.ts';
import { createLimitsRedis, loadRedisClass, redisReady } from '../../src/limits/redis-client.ts';
import { DATABASE_URL, REDIS_URL, describeWithPostgres, describeWithRedis } from '../helpers/services.ts';
import { quotaStoreContract } from './quota-store-contract.ts';

const run = randomBytes(4).toString('hex');

describeWithRedis('Redis quota store', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = createLimitsRedis({ url: REDIS_URL!, timeoutMs: 500, logger: silentLogger(), registry: createRegistry(), role: 'quota-test' }, await loadRedisClass());
    await redisReady(redis, 5000);
  });
  afterAll(async () => {
    const keys = await redis.keys(`mwtest-quota:${run}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  let n = 0;
  quotaStoreContract(() => ({ store: new RedisQuotaStore(redis, { keyPrefix: `mwtest-quota:${run}:` }), prefix: `r${n++}-` }));

  it('expires a counter with its period', async () => {
    const store = new RedisQuotaStore(redis, { keyPrefix: `mwtest-quota:${run}:` });
    const expiresAt = Date.now() + 60_000;
    await store.consume({ policy: 'p', subject: 's', period: 'ttl', expiresAt }, 5, 1);
    const ttl = await redis.pttl(`mwtest-quota:${run}:p/ttl/s`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});

describeWithPostgres('PostgreSQL quota store', () => {
  const stores: PostgresQuotaStore[] = [];
  const make = () => {
    const s = new PostgresQuotaStore({ url: DATABASE_URL!, timeoutMs: 5000 });
    stores.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of stores) await s.close();
  });
  let n = 0;
  quotaStoreContract(() => ({ store: make(), prefix: `pg-${run}-${n++}-` }));

  describe('adjustment log', () => {
    it('records adjustments durably and lists them newest first with filters', async () => {
      const s = make();
      const base = { actor: 'ops', role: 'operator', period: '2026-01', action: 'add' as const, before: 1, after: 0, reason: 'test' };
      const policy = `pg-${run}/log`;
      await s.record({ ...base, id: `${run}-1`, time: 1000, policy, subject: 'a' });
      await s.record({ ...base, id: `${run}-2`, time: 2000, policy, subject: 'b' });
      const reopened = make();
      expect((await reopened.list({ policy, limit: 10 })).map((e) => e.id)).toEqual([`${run}-2`, `${run}-1`]);
      expect((await reopened.list({ policy, subject: 'a', limit: 10 })).map((e) => [e.id, e.time, e.before])).toEqual([[`${run}-1`, 1000, 1]]);
    });
  });
});
