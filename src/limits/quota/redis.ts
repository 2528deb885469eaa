/** Quota counters in Redis (shared by replicas): check-and-add in one Lua call, expiring with the period. */
import type { Redis } from 'ioredis';
import { LimitsBackendUnavailableError } from '../errors.ts';
import type { ConsumeResult, QuotaAdjustment, QuotaCounterRef, QuotaStore } from './store.ts';

/** KEYS[1] counter; ARGV: limit, cost, expiresAt (ms). Reply {allowed, used}. */
const CONSUME = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[2])
if used + cost > tonumber(ARGV[1]) then return {0, used} end
used = redis.call('INCRBY', KEYS[1], cost)
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {1, used}
`;

/** KEYS[1] counter; ARGV: action, value, expiresAt. Reply {before, after}. Mirrors `applyAdjustment`. */
const ADJUST = `
local before = tonumber(redis.call('GET', KEYS[1]) or '0')
local action = ARGV[1]
local v = tonumber(ARGV[2])
local after = 0
if action == 'set' then after = v elseif action == 'add' then after = before + v end
if after < 0 then after = 0 end
redis.call('SET', KEYS[1], after, 'PXAT', ARGV[3])
return {before, after}
`;

type Script = (numKeys: number, ...args: (string | number)[]) => Promise<[number, number]>;

export class RedisQuotaStore implements QuotaStore {
  readonly kind = 'redis';
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #consume: Script;
  readonly #adjust: Script;

  constructor(redis: Redis, options: { keyPrefix?: string } = {}) {
    this.#redis = redis;
    this.#prefix = options.keyPrefix ?? 'meshward:quota:';
    if (!('meshwardQuotaConsume' in redis)) {
      redis.defineCommand('meshwardQuotaConsume', { lua: CONSUME });
      redis.defineCommand('meshwardQuotaAdjust', { lua: ADJUST });
    }
    const r = redis as unknown as { meshwardQuotaConsume: Script; meshwardQuotaAdjust: Script };
    this.#consume = r.meshwardQuotaConsume.bind(redis);
    this.#adjust = r.meshwardQuotaAdjust.bind(redis);
  }

  #key(ref: QuotaCounterRef): string {
    return `${this.#prefix}${ref.policy}/${ref.period}/${ref.subject}`;
  }

  async #run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new LimitsBackendUnavailableError(`redis quota ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async consume(ref: QuotaCounterRef, limit: number, cost: number): Promise<ConsumeResult> {
    const [allowed, used] = await this.#run('consume', () => this.#consume(1, this.#key(ref), limit, cost, ref.expiresAt));
    return { allowed: allowed === 1, used: Number(used) };
  }

  async used(ref: QuotaCounterRef): Promise<number> {
    return Number((await this.#run('read', () => this.#redis.get(this.#key(ref)))) ?? 0);
  }

  async adjust(ref: QuotaCounterRef, a: QuotaAdjustment): Promise<{ before: number; after: number }> {
    const value = a.action === 'set' ? a.used : a.action === 'add' ? a.delta : 0;
    const [before, after] = await this.#run('adjust', () => this.#adjust(1, this.#key(ref), a.action, value, ref.expiresAt));
    return { before: Number(before), after: Number(after) };
  }

  async close(): Promise<void> {
    // The client is owned by the capability.
  }
}
