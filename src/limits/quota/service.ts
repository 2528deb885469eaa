/**
 * Quotas: long-window budgets per subject. Counts requests against the policy's store, reports
 * what is left, and applies operator adjustments, each recorded in the adjustment log.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../lib/clock.ts';
import type { Logger } from '../../lib/logger.ts';
import { counter, type Registry } from '../../lib/metrics.ts';
import type { FailureMode } from '../engine.ts';
import { LimitsBackendUnavailableError, QuotaNotFoundError, LimitsStoreUnconfiguredError } from '../errors.ts';
import type { LimitRequestAttributes } from '../request-descriptors.ts';
import { periodBounds } from './periods.ts';
import { type CompiledQuotaPolicy, quotaMatches, subjectId, subjectOf } from './policies.ts';
import type { AdjustmentLog, ConsumeResult, QuotaAdjustment, QuotaAdjustmentV1, QuotaCounterRef, QuotaStore } from './store.ts';

/** What `GET /v1/quotas/:key` returns per policy. Versioned wire type. */
export interface QuotaStatusV1 {
  policy: string;
  /** Stored subject (API keys appear hashed). */
  subject: string;
  period: 'day' | 'month';
  /** Current period id, e.g. `2026-01-31`. */
  periodId: string;
  limit: number;
  used: number;
  remaining: number;
  /** End of the current period (ms since the epoch). */
  resetAt: number;
  store: QuotaStore['kind'];
  shadowMode: boolean;
}

/** One request counted against one quota. */
export interface QuotaCheck {
  policy: CompiledQuotaPolicy;
  subject: string;
  allowed: boolean;
  used: number;
  remaining: number;
  resetMs: number;
  /** Exhausted but `shadowMode`: allowed, logged. */
  shadowed: boolean;
  failedOver?: FailureMode;
}

/** The store of a kind, created on first use; undefined when that kind is not configured. */
export type QuotaStores = (kind: CompiledQuotaPolicy['store']) => QuotaStore | undefined;

export interface QuotaServiceOptions {
  stores: QuotaStores;
  log: AdjustmentLog;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  failureMode: FailureMode;
  /** Called with each recorded adjustment (the capability also appends it to the audit log). */
  onAdjusted?: (adjustment: QuotaAdjustmentV1) => void;
}

export class QuotaService {
  #policies: readonly CompiledQuotaPolicy[] = [];
  readonly #o: QuotaServiceOptions;
  readonly #log: Logger;
  readonly #checks;
  readonly #failovers;

  constructor(options: QuotaServiceOptions) {
    this.#o = { ...options };
    this.#log = options.logger.child({ component: 'limits', part: 'quota' });
    this.#checks = counter(options.registry, 'meshward_quota_requests_total', 'Requests counted against quotas by policy and result (ok, exhausted, shadow_exhausted).', ['policy', 'result']);
    this.#failovers = counter(options.registry, 'meshward_quota_failure_mode_total', 'Quota checks decided by the failure mode because the store could not answer.', ['mode']);
  }

  setFailureMode(mode: FailureMode): void {
    this.#o.failureMode = mode;
  }

  /** Throws LimitsStoreUnconfiguredError when a policy names a store that is not configured. */
  validate(policies: readonly CompiledQuotaPolicy[]): void {
    for (const p of policies) this.#store(p);
  }

  /** Installs a snapshot's policies (validated first). */
  setPolicies(policies: readonly CompiledQuotaPolicy[]): void {
    this.validate(policies);
    this.#policies = policies;
  }

  policies(): readonly CompiledQuotaPolicy[] {
    return this.#policies;
  }

  #store(p: CompiledQuotaPolicy): QuotaStore {
    const store = this.#o.stores(p.store);
    if (!store) {
      const hint = p.store === 'redis' ? '--redis-url / MESHWARD_REDIS_URL' : '--database-url / MESHWARD_DATABASE_URL';
      throw new LimitsStoreUnconfiguredError(`QuotaPolicy ${p.id} uses store "${p.store}" but no ${p.store} is configured (${hint})`);
    }
    return store;
  }

  #ref(p: CompiledQuotaPolicy, subject: string, now: number): QuotaCounterRef {
    const b = periodBounds(p.period, now);
    return { policy: p.id, subject, period: b.id, expiresAt: b.end };
  }

  /** Counts the request against one policy; undefined when the policy does not count it. */
  async consume(p: CompiledQuotaPolicy, r: LimitRequestAttributes, cost = 1): Promise<QuotaCheck | undefined> {
    if (!quotaMatches(p, r)) return undefined;
    const raw = subjectOf(p, r);
    if (raw === undefined) return undefined;
    const now = this.#o.clock.now();
    const subject = subjectId(p, raw);
    const ref = this.#ref(p, subject, now);
    const resetMs = ref.expiresAt - now;
    let result: ConsumeResult;
    try {
      result = await this.#store(p).consume(ref, p.limit, cost);
    } catch (err) {
      if (!(err instanceof LimitsBackendUnavailableError)) throw err;
      const mode = this.#o.failureMode;
      this.#failovers.inc({ mode });
      this.#log.debug({ err: { message: err.message }, policy: p.id, mode }, 'quota store unavailable; failure mode applied');
      return { policy: p, subject, allowed: mode === 'open', used: 0, remaining: mode === 'open' ? p.limit : 0, resetMs, shadowed: false, failedOver: mode };
    }
    const remaining = Math.max(0, p.limit - result.used);
    if (result.allowed) {
      this.#checks.inc({ policy: p.id, result: 'ok' });
      return { policy: p, subject, allowed: true, used: result.used, remaining, resetMs, shadowed: false };
    }
    if (p.shadowMode) {
      this.#checks.inc({ policy: p.id, result: 'shadow_exhausted' });
      this.#log.info({ policy: p.id, subject, used: result.used, limit: p.limit }, 'shadow mode: quota exhausted, request would be rate limited');
      return { policy: p, subject, allowed: true, used: result.used, remaining: 0, resetMs, shadowed: true };
    }
    this.#checks.inc({ policy: p.id, result: 'exhausted' });
    return { policy: p, subject, allowed: false, used: result.used, remaining: 0, resetMs, shadowed: false };
  }

  #select(policyId: string | undefined): readonly CompiledQuotaPolicy[] {
    if (policyId === undefined) return this.#policies;
    const p = this.#policies.find((x) => x.id === policyId);
    if (!p) throw new QuotaNotFoundError(`no QuotaPolicy "${policyId}" (have: ${this.#policies.map((x) => x.id).join(', ') || 'none'})`);
    return [p];
  }

  /** Remaining quota of `key` (a principal or an API key) under every policy, or one. */
  async status(key: string, policyId?: string): Promise<QuotaStatusV1[]> {
    const now = this.#o.clock.now();
    return Promise.all(this.#select(policyId).map(async (p) => {
      const subject = subjectId(p, key);
      const ref = this.#ref(p, subject, now);
      const used = await this.#store(p).used(ref);
      return { policy: p.id, subject, period: p.period, periodId: ref.period, limit: p.limit, used, remaining: Math.max(0, p.limit - used), resetAt: ref.expiresAt, store: this.#store(p).kind, shadowMode: p.shadowMode };
    }));
  }

  /** Applies and records an operator adjustment to `key`'s current period under `policyId`. */
  async adjust(key: string, policyId: string, adjustment: QuotaAdjustment, actor: { name: string; role: string }, reason: string): Promise<{ status: QuotaStatusV1; adjustment: QuotaAdjustmentV1 }> {
    const p = this.#select(policyId)[0]!;
    const now = this.#o.clock.now();
    const subject = subjectId(p, key);
    const ref = this.#ref(p, subject, now);
    const { before, after } = await this.#store(p).adjust(ref, adjustment);
    const record: QuotaAdjustmentV1 = { id: randomUUID(), time: now, actor: actor.name, role: actor.role, policy: p.id, subject, period: ref.period, action: adjustment.action, before, after, reason };
    await this.#o.log.record(record);
    this.#log.info({ adjustment: record }, 'quota adjusted');
    this.#o.onAdjusted?.(record);
    const status = (await this.status(key, policyId))[0]!;
    return { status, adjustment: record };
  }

  /** Recorded adjustments, most recent first. `key` is hashed like subjects when the policy keys on a header. */
  history(filter: { policy?: string; key?: string; limit: number }): Promise<QuotaAdjustmentV1[]> {
    let subject = filter.key;
    if (filter.key !== undefined && filter.policy !== undefined) subject = subjectId(this.#select(filter.policy)[0]!, filter.key);
    return this.#o.log.list({ ...(filter.policy ? { policy: filter.policy } : {}), ...(subject ? { subject } : {}), limit: filter.limit });
  }
}
