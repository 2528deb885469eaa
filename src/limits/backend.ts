/**
 * Where counters live. A backend applies hits atomically per counter; the engine decides what a
 * failure means (fail open or closed). Implementations: `memory.ts` (one replica), `redis.ts`
 * (shared by every replica). Both pass `test/limits/backend-contract.ts`.
 */
import type { HitOutcome } from './algorithms.ts';

export type LimitAlgorithm = 'gcra' | 'fixed-window';

/**
 * One counter to hit, named by `scope` (domain, entry keys, every value but the last) and `value`
 * (the last entry's value): the pair is unique per domain + descriptor. Split so the memory
 * backend indexes by scope then value without concatenating a key per request.
 */
export interface LimitHit {
  scope: string;
  value: string;
  algorithm: LimitAlgorithm;
  /** Requests per window; 0 denies everything. */
  limit: number;
  windowMs: number;
  /** Hits to add (RLS `hits_addend`, at least 1). */
  cost: number;
}

export interface LimitBackend {
  readonly kind: 'memory' | 'redis';
  /**
   * Applies every hit at `now` (ms since the epoch) and returns one outcome per hit, in order.
   * The memory backend answers synchronously; Redis sends all hits in one round trip. Throws
   * `LimitsBackendUnavailableError` when the store cannot answer in time.
   */
  hit(hits: readonly LimitHit[], now: number): HitOutcome[] | Promise<HitOutcome[]>;
  /** True while the backend can answer (readiness, metrics). */
  healthy(): boolean;
  close(): Promise<void>;
}
