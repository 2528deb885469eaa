/**
 * One ioredis connection tuned for limits: commands never queue while Redis is away (they fail at
 * once, so a Redis outage never stalls requests), every command has a short timeout, reconnection
 * is automatic with capped backoff, and state changes are logged once and exported as a gauge.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';

export interface LimitsRedisOptions {
  url: string;
  /** Per-command timeout (mesh `limits.timeout`, 20 ms by default like Envoy's rate-limit filter). */
  timeoutMs: number;
  logger: Logger;
  registry: Registry;
  /** Label for metrics and logs: `ratelimit` or `quota`. */
  role: string;
}

/** Longest pause between reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** Strips the password from a Redis URL before it reaches a log line. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return 'redis://<unparseable>';
  }
}

export type RedisClass = typeof Redis;

/**
 * ioredis, imported only when Redis is configured. Why not a static import: ioredis declares
 * `class VerbatimString extends String`, and once any String subclass exists V8 stops inlining
 * `charCodeAt` in the whole process; string-scanning loops (protobufjs's UTF-8 writer, path and
 * query parsing) then ran 3–6× slower in a micro-benchmark, on every check, even with limits kept
 * in memory.
 */
export async function loadRedisClass(): Promise<RedisClass> {
  return (await import('ioredis')).Redis;
}

export function createLimitsRedis(options: LimitsRedisOptions, RedisImpl: RedisClass): Redis {
  const up = gauge(options.registry, 'meshward_limits_redis_up', 'Whether the Redis connection used for limits is ready (1) or not (0).', ['role']);
  const transitions = counter(options.registry, 'meshward_limits_redis_state_changes_total', 'Redis connection state changes for limits.', ['role', 'state']);
  const log = options.logger.child({ component: 'limits', redis: redactRedisUrl(options.url), role: options.role });
  const redis = new RedisImpl(options.url, {
    commandTimeout: options.timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
    connectTimeout: Math.max(1000, options.timeoutMs * 10),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), MAX_RECONNECT_DELAY_MS),
    lazyConnect: false,
  });
  // 'connecting' until the first ready: an unreachable Redis at start is reported like an outage.
  let state: 'connecting' | 'up' | 'down' = 'connecting';
  up.set({ role: options.role }, 0);
  redis.on('ready', () => {
    if (state === 'up') return;
    const recovered = state === 'down';
    state = 'up';
    up.set({ role: options.role }, 1);
    transitions.inc({ role: options.role, state: 'up' });
    log.info(recovered ? 'redis for limits is reachable again' : 'redis for limits is ready');
  });
  const down = (err?: Error) => {
    if (state === 'down') return;
    state = 'down';
    up.set({ role: options.role }, 0);
    transitions.inc({ role: options.role, state: 'down' });
    log.warn({ err: err ? { message: err.message } : undefined }, 'redis for limits is unreachable; applying failureMode until it recovers');
  };
  redis.on('error', (err: Error) => down(err));
  redis.on('close', () => {
    if (state === 'up') down();
  });
  return redis;
}

/** Resolves once the client is ready, or rejects after `timeoutMs` (startup, tests). */
export function redisReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
