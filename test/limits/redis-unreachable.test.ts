import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { RedisBackend } from '../../src/limits/redis.ts';
import { createLimitsRedis, loadRedisClass } from '../../src/limits/redis-client.ts';
import type { Redis } from 'ioredis';
import { engineFor, entries, rateLimitPolicy } from './helpers.ts';
import { freePort } from '../helpers/ports.ts';

const POLICY = rateLimitPolicy('p', '  domain: d\n  descriptors: [{ key: user, rate_limit: { unit: second, requests_per_unit: 5 } }]');

let client: Redis | undefined;
afterEach(() => client?.disconnect());

describe('Redis unreachable from the start', () => {
  it('fails open at once, reports the outage once in logs and metrics, and never queues commands', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const registry = createRegistry();
    client = createLimitsRedis({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 20, logger: createLogger({ destination: sink, level: 'info' }), registry, role: 'start' }, await loadRedisClass());
    await vi.waitFor(() => expect(lines.some((l) => l.includes('unreachable'))).toBe(true), { timeout: 5000, interval: 10 });
    const { engine } = engineFor(POLICY, new RedisBackend(client));
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => engine.shouldRateLimit({ domain: 'd', descriptors: [{ entries: entries(['user', 'u']) }] })));
    expect(verdicts.every((v) => v.overall === 'OK' && v.statuses[0]!.failedOver === 'open')).toBe(true);
    expect(lines.filter((l) => l.includes('unreachable'))).toHaveLength(1);
    const text = await registry.metrics();
    expect(text).toContain('meshward_limits_redis_up{role="start"} 0');
    expect(text).toContain('meshward_limits_redis_state_changes_total{role="start",state="down"} 1');
  });
});
