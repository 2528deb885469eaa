/**
 * Counters in Redis, shared by every replica. One check = one EVALSHA carrying all its counters
 * (atomic, one round trip); concurrent checks are auto-pipelined onto the connection. Failures and
 * timeouts surface as `LimitsBackendUnavailableError`; the engine applies the failure mode.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type HitOutcome, fixedWindowOutcome, gcraOutcome, gcraParams, windowStartOf } from './algorithms.ts';
import type { LimitBackend, LimitHit } from './backend.ts';
import { LimitsBackendUnavailableError } from './errors.ts';
import { counterKey } from './engine.ts';
import { HITS_SCRIPT } from './redis-scripts.ts';

type HitsCommand = (numKeys: number, ...args: (string | number)[]) => Promise<[number, number, number][]>;

export interface RedisBackendOptions {
  /** Prefix of every key (several meshward meshes can share one Redis). */
  keyPrefix?: string;
}

export class RedisBackend implements LimitBackend {
  readonly kind = 'redis';
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #hits: HitsCommand;

  constructor(redis: Redis, options: RedisBackendOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.keyPrefix ?? 'meshward:rl:';
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (after a Redis restart).
    if (!('meshwardLimitHits' in redis)) redis.defineCommand('meshwardLimitHits', { lua: HITS_SCRIPT });
    const command = (redis as unknown as { meshwardLimitHits: HitsCommand }).meshwardLimitHits;
    this.#hits = command.bind(redis);
  }

  /**
   * The Redis key of a counter. Descriptor values can be API keys or principals, so the key holds a
   * SHA-256 of the counter key, never the values; fixed windows append the window start (seconds)
   * as the reference service does, so old windows simply expire.
   */
  keyOf(h: LimitHit, now: number): string {
    const digest = createHash('sha256').update(counterKey(h)).digest('base64url').slice(0, 32);
    return h.algorithm === 'fixed-window'
      ? `${this.#prefix}f:${digest}:${windowStartOf(now, h.windowMs) / 1000}`
      : `${this.#prefix}g:${digest}`;
  }

  async hit(hits: readonly LimitHit[], now: number): Promise<HitOutcome[]> {
    if (hits.length === 0) return [];
    const keys: string[] = [];
    const args: (string | number)[] = [now];
    for (const h of hits) {
      keys.push(this.keyOf(h, now));
      if (h.algorithm === 'fixed-window') args.push('f', h.limit, h.windowMs, 0, h.cost);
      else {
        const p = gcraParams(h.limit, h.windowMs);
        args.push('g', h.limit, p.intervalUs, p.burstUs, h.cost);
      }
    }
    let reply: [number, number, number][];
    try {
      reply = await this.#hits(keys.length, ...keys, ...args);
    } catch (err) {
      throw new LimitsBackendUnavailableError(`redis rate-limit check failed: ${(err as Error).message}`, { cause: err });
    }
    const nowUs = now * 1000;
    return hits.map((h, i) => {
      const [allowed, a, b] = reply[i]!;
      if (h.algorithm === 'fixed-window') return fixedWindowOutcome(Number(a), now, h.limit, h.windowMs);
      if (h.limit <= 0) return { allowed: false, remaining: 0, resetMs: h.windowMs, retryAfterMs: h.windowMs };
      const p = gcraParams(h.limit, h.windowMs);
      return gcraOutcome(allowed === 1, Number(a), Number(b), nowUs, p.intervalUs, p.burstUs);
    });
  }

  healthy(): boolean {
    return this.#redis.status === 'ready';
  }

  async close(): Promise<void> {
    // The client is owned by the capability (shared with the Redis quota store).
  }
}
