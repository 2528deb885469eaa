/**
 * The rate-limit decision shared by the RLS API and the ext_authz stage: the reference service's
 * `shouldRateLimit` (limits per descriptor, unlimited, `replaces`, shadow mode, any over limit ⇒
 * OVER_LIMIT) over a pluggable backend, with the failure mode applied when the backend is away.
 */
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, type Registry } from '../lib/metrics.ts';
import type { HitOutcome } from './algorithms.ts';
import type { LimitBackend, LimitHit } from './backend.ts';
import { ResultCounts } from './counts.ts';
import { type CompiledLimit, type DescriptorEntry, findLimit } from './descriptors.ts';
import { LimitsBackendUnavailableError, LimitsBadRequestError } from './errors.ts';
import type { CompiledRateLimitPolicy, CompiledRateLimits } from './policies.ts';
import { type LimitUnit, UNIT_MS, parseUnit } from './units.ts';

export type FailureMode = 'open' | 'closed';

export interface RequestDescriptor {
  entries: readonly DescriptorEntry[];
  /** Envoy's per-descriptor `limit` override: replaces the configured limit for this descriptor. */
  limitOverride?: { requestsPerUnit: number; unit: string };
}

export interface RateLimitQuery {
  domain: string;
  descriptors: readonly RequestDescriptor[];
  /** Hits to add (RLS `hits_addend`); 0 or absent counts as 1. */
  hitsAddend?: number;
}

export interface DescriptorStatus {
  code: 'OK' | 'OVER_LIMIT';
  /** The limit that applied; absent when none did (no match, unlimited, or replaced). */
  limit?: CompiledLimit;
  unlimited: boolean;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
  /** Over the limit but `shadow_mode`: reported OK, logged and counted. */
  shadowed: boolean;
  /** The backend could not answer; the failure mode decided. */
  failedOver?: FailureMode;
}

export interface RateLimitVerdict {
  overall: 'OK' | 'OVER_LIMIT';
  statuses: DescriptorStatus[];
  policy?: CompiledRateLimitPolicy;
}

export interface RateLimitEngineOptions {
  backend: LimitBackend;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  failureMode: FailureMode;
}

type Outcome = HitOutcome & { failedOver?: FailureMode };

const UNLIMITED_REMAINING = 4294967295;
/** Retry hint when a closed failure mode refuses a request. */
const FAIL_CLOSED_RETRY_MS = 1000;

/** The counter scope: domain, entry keys, and every value but the last, length-prefixed so no value can forge another scope. */
export function counterScope(domain: string, entries: readonly DescriptorEntry[]): string {
  let scope = domain;
  const last = entries.length - 1;
  for (let i = 0; i < last; i++) scope += `/${entries[i]!.key}=${entries[i]!.value.length}:${entries[i]!.value}`;
  return `${scope}/${entries[last]!.key}`;
}

/** A counter as one string (scope + last value, length-prefixed): the Redis backend hashes it. */
export function counterKey(h: { scope: string; value: string }): string {
  return `${h.scope}=${h.value.length}:${h.value}`;
}

function overrideLimit(o: { requestsPerUnit: number; unit: string }, entries: readonly DescriptorEntry[]): CompiledLimit {
  const unit: LimitUnit = parseUnit(o.unit);
  return { path: entries.map((e) => e.key).join('.'), unit, requestsPerUnit: o.requestsPerUnit, windowMs: UNIT_MS[unit], unlimited: false, shadowMode: false, replaces: [] };
}

/** Validates an RLS query the way the reference service does. */
export function validateQuery(q: RateLimitQuery): void {
  if (!q.domain) throw new LimitsBadRequestError('rate limit domain must not be empty');
  if (q.descriptors.length === 0) throw new LimitsBadRequestError('rate limit descriptor list must not be empty');
  q.descriptors.forEach((d, i) => {
    if (d.entries.length === 0) throw new LimitsBadRequestError(`descriptors[${i}] has no entries`);
    d.entries.forEach((e, j) => {
      if (!e.key) throw new LimitsBadRequestError(`descriptors[${i}].entries[${j}].key must not be empty`);
    });
  });
}

/** Limits per descriptor after unlimited and `replaces` (pure). */
export function resolveLimits(policy: CompiledRateLimitPolicy | undefined, descriptors: readonly RequestDescriptor[]): (CompiledLimit | undefined)[] {
  const limits = new Array<CompiledLimit | undefined>(descriptors.length);
  let replacing = false;
  for (let i = 0; i < descriptors.length; i++) {
    const d = descriptors[i]!;
    const l = d.limitOverride ? overrideLimit(d.limitOverride, d.entries) : policy ? findLimit(policy.root, d.entries) : undefined;
    limits[i] = l;
    if (l && l.replaces.length > 0) replacing = true;
  }
  if (!replacing) return limits;
  const replaced = new Set<string>();
  for (const l of limits) if (l) for (const r of l.replaces) replaced.add(r);
  return limits.map((l) => (l?.name !== undefined && replaced.has(l.name) ? undefined : l));
}

export class RateLimitEngine {
  #policies: CompiledRateLimits = { version: '', byDomain: new Map(), policies: [] };
  readonly #o: RateLimitEngineOptions;
  readonly #checks: ResultCounts<'ok' | 'over_limit' | 'shadow_over_limit'>;
  readonly #failovers;
  readonly #log: Logger;

  constructor(options: RateLimitEngineOptions) {
    this.#o = { ...options };
    this.#log = options.logger.child({ component: 'limits' });
    this.#checks = new ResultCounts(options.registry, 'meshward_ratelimit_descriptors_total', 'Rate-limited descriptors by domain and result (ok, over_limit, shadow_over_limit).', 'domain', ['ok', 'over_limit', 'shadow_over_limit'] as const);
    this.#failovers = counter(options.registry, 'meshward_ratelimit_failure_mode_total', 'Checks decided by the failure mode because the backend could not answer.', ['mode']);
  }

  get backend(): LimitBackend {
    return this.#o.backend;
  }

  setFailureMode(mode: FailureMode): void {
    this.#o.failureMode = mode;
  }

  setPolicies(policies: CompiledRateLimits): void {
    this.#policies = policies;
  }

  policies(): CompiledRateLimits {
    return this.#policies;
  }

  /** The reference service's ShouldRateLimit. Throws LimitsBadRequestError on a malformed query. */
  async shouldRateLimit(q: RateLimitQuery): Promise<RateLimitVerdict> {
    validateQuery(q);
    const policy = this.#policies.byDomain.get(q.domain);
    return this.decide(policy, q.domain, q.descriptors, Math.max(1, q.hitsAddend ?? 1));
  }

  /**
   * Decision for descriptors already built from a policy's actions (the ext_authz path). Answers
   * synchronously when the backend does (memory): no promise, no microtask on the hot path.
   */
  decide(policy: CompiledRateLimitPolicy | undefined, domain: string, descriptors: readonly RequestDescriptor[], cost = 1): RateLimitVerdict | Promise<RateLimitVerdict> {
    const limits = resolveLimits(policy, descriptors);
    const hits: LimitHit[] = [];
    const algorithm = policy?.algorithm ?? 'fixed-window';
    for (let i = 0; i < limits.length; i++) {
      const l = limits[i];
      if (!l || l.unlimited) continue;
      const entries = descriptors[i]!.entries;
      hits.push({ scope: counterScope(domain, entries), value: entries[entries.length - 1]!.value, algorithm, limit: l.requestsPerUnit, windowMs: l.windowMs, cost });
    }
    if (hits.length === 0) return this.#verdict(policy, domain, descriptors, limits, []);
    let outcomes: HitOutcome[] | Promise<HitOutcome[]>;
    try {
      outcomes = this.#o.backend.hit(hits, this.#o.clock.now());
    } catch (err) {
      return this.#verdict(policy, domain, descriptors, limits, this.#failOver(err, hits));
    }
    if (Array.isArray(outcomes)) return this.#verdict(policy, domain, descriptors, limits, outcomes);
    return outcomes.then(
      (o) => this.#verdict(policy, domain, descriptors, limits, o),
      (err: unknown) => this.#verdict(policy, domain, descriptors, limits, this.#failOver(err, hits)),
    );
  }

  /** Statuses in descriptor order; `outcomes` are those of the counted descriptors, in order. */
  #verdict(policy: CompiledRateLimitPolicy | undefined, domain: string, descriptors: readonly RequestDescriptor[], limits: (CompiledLimit | undefined)[], outcomes: Outcome[]): RateLimitVerdict {
    const statuses = new Array<DescriptorStatus>(limits.length);
    let over = false;
    let n = 0;
    for (let i = 0; i < limits.length; i++) {
      const l = limits[i];
      if (!l) statuses[i] = { code: 'OK', unlimited: false, remaining: 0, resetMs: 0, retryAfterMs: 0, shadowed: false };
      else if (l.unlimited) statuses[i] = { code: 'OK', unlimited: true, remaining: UNLIMITED_REMAINING, resetMs: 0, retryAfterMs: 0, shadowed: false };
      else {
        const s = this.#status(domain, l, outcomes[n++]!, descriptors[i]!);
        if (s.code === 'OVER_LIMIT') over = true;
        statuses[i] = s;
      }
    }
    const overall = over ? 'OVER_LIMIT' : 'OK';
    return policy ? { overall, statuses, policy } : { overall, statuses };
  }

  #failOver(err: unknown, hits: readonly LimitHit[]): Outcome[] {
    if (!(err instanceof LimitsBackendUnavailableError)) throw err;
    const mode = this.#o.failureMode;
    this.#failovers.inc({ mode });
    // Debug per check: the Redis client logs the outage itself once, on the state change.
    this.#log.debug({ err: { message: err.message }, mode }, 'rate-limit backend unavailable; failure mode applied');
    return hits.map((h) => (mode === 'open'
      ? { allowed: true, remaining: h.limit, resetMs: 0, retryAfterMs: 0, failedOver: 'open' as const }
      : { allowed: false, remaining: 0, resetMs: FAIL_CLOSED_RETRY_MS, retryAfterMs: FAIL_CLOSED_RETRY_MS, failedOver: 'closed' as const }));
  }

  #status(domain: string, limit: CompiledLimit, o: Outcome, d: RequestDescriptor): DescriptorStatus {
    let code: DescriptorStatus['code'] = 'OK';
    let shadowed = false;
    let retryAfterMs = o.retryAfterMs;
    if (o.allowed) this.#checks.add(domain, 'ok');
    else if (limit.shadowMode && !o.failedOver) {
      this.#checks.add(domain, 'shadow_over_limit');
      this.#log.info({ domain, limit: limit.path, descriptor: d.entries.map((e) => e.key) }, 'shadow mode: request would be rate limited');
      shadowed = true;
      retryAfterMs = 0;
    } else {
      this.#checks.add(domain, 'over_limit');
      code = 'OVER_LIMIT';
    }
    // Built in one literal (same shape every time) on the hot path.
    const status: DescriptorStatus = { code, limit, unlimited: false, remaining: o.remaining, resetMs: o.resetMs, retryAfterMs, shadowed };
    if (o.failedOver) status.failedOver = o.failedOver;
    return status;
  }
}
