/**
 * The `limits` stage of the ext_authz pipeline (runs after `authorize`, so denied requests never
 * consume a limit or quota). Rate limits first, then quotas (a request refused by a rate limit
 * does not burn quota). Over a limit ⇒ 429 with `Retry-After` and the IETF `RateLimit-Policy` /
 * `RateLimit` headers; shadow-mode limits only log and mark the audit record `dryRun`.
 */
import type { MatchedPolicy } from '../audit/record.ts';
import type { RateLimitedDecision } from '../authz/decision.ts';
import type { CheckContext, Stage, StageFactory, StageResult } from '../authz/stage.ts';
import type { ConfigSnapshot } from '../config/index.ts';
import { selectorMatches } from '../config/selector.ts';
import type { RateLimitEngine, RateLimitVerdict } from './engine.ts';
import { type HeaderLimit, ceilSeconds, rateLimitHeaders, retryAfterHeader } from './headers.ts';
import { type CompiledRateLimitPolicy, compileRateLimits } from './policies.ts';
import { compileQuotaPolicies, type CompiledQuotaPolicy } from './quota/policies.ts';
import type { QuotaCheck, QuotaService } from './quota/service.ts';
import { type LimitRequestAttributes, buildDescriptors } from './request-descriptors.ts';

export const LIMITS_STAGE = 'limits';

interface Scoped { namespace: string; selector?: { matchLabels: Record<string, string> } }

/** Istio scoping: a policy in the root namespace applies mesh-wide, otherwise to its own namespace. */
function applies(p: Scoped, ctx: CheckContext, rootNamespace: string): boolean {
  if (p.namespace !== rootNamespace && p.namespace !== ctx.workload.namespace) return false;
  return selectorMatches(p.selector, ctx.workload.labels);
}

export function attributesOf(ctx: CheckContext): LimitRequestAttributes {
  const r = ctx.request;
  // Path prefixes see the strictest reading of an ambiguous path, as DENY rules do: `//admin`,
  // `/;/admin` or `/x/..%2fadmin` cannot slip past a limit on `/admin/` (authz/path-normalization.ts).
  const path = r.alternatePaths?.[0] ?? r.path;
  const attrs: LimitRequestAttributes = { headers: r.headers, path, method: r.method, destinationService: ctx.workload.display };
  if (r.sourcePrincipal) attrs.sourcePrincipal = r.sourcePrincipal;
  if (ctx.auth) attrs.requestPrincipal = ctx.auth.principal;
  return attrs;
}

/** One applied limit of a request, described without descriptor values (they can be API keys). */
interface Hit {
  kind: 'RateLimitPolicy' | 'QuotaPolicy';
  namespace: string;
  name: string;
  what: string;
  header: HeaderLimit;
  retryAfterMs: number;
  over: boolean;
  shadowed: boolean;
  failedClosed: boolean;
  /** Enforced limits only: shadow-mode limits are never advertised to clients. */
  advertise: boolean;
  /** The policy asks for RateLimit headers on allowed responses too. */
  onAllow: boolean;
}

function rateLimitHits(p: CompiledRateLimitPolicy, v: RateLimitVerdict): Hit[] {
  const out: Hit[] = [];
  for (const s of v.statuses) {
    if (!s.limit || s.unlimited) continue;
    out.push({
      kind: 'RateLimitPolicy', namespace: p.namespace, name: p.name,
      what: `${s.limit.path} (${s.limit.requestsPerUnit}/${s.limit.unit})`,
      header: { name: s.limit.name ?? p.name, quota: s.limit.requestsPerUnit, windowSeconds: s.limit.windowMs / 1000, remaining: s.remaining, resetSeconds: ceilSeconds(s.code === 'OVER_LIMIT' ? s.retryAfterMs : s.resetMs) },
      retryAfterMs: s.retryAfterMs, over: s.code === 'OVER_LIMIT', shadowed: s.shadowed, failedClosed: s.failedOver === 'closed',
      advertise: !s.limit.shadowMode, onAllow: p.responseHeaders,
    });
  }
  return out;
}

function quotaHit(q: QuotaCheck): Hit {
  const p = q.policy;
  return {
    kind: 'QuotaPolicy', namespace: p.namespace, name: p.name, what: `${p.subject.from} (${p.limit}/${p.period})`,
    header: { name: p.name, quota: p.limit, windowSeconds: p.period === 'day' ? 86_400 : 2_592_000, remaining: q.remaining, resetSeconds: ceilSeconds(q.resetMs) },
    retryAfterMs: q.allowed ? 0 : q.resetMs, over: !q.allowed, shadowed: q.shadowed, failedClosed: q.failedOver === 'closed',
    advertise: !p.shadowMode, onAllow: p.responseHeaders,
  };
}

function matched(hits: readonly Hit[], policies: readonly { kind: Hit['kind']; namespace: string; name: string }[]): MatchedPolicy[] {
  return policies.map((p) => {
    const mine = hits.filter((h) => h.kind === p.kind && h.namespace === p.namespace && h.name === p.name);
    const m: MatchedPolicy = { kind: p.kind, namespace: p.namespace, name: p.name };
    if (mine.some((h) => h.over)) m.effect = 'limited';
    else if (mine.some((h) => h.shadowed)) { m.effect = 'limited'; m.dryRun = true; }
    return m;
  });
}

/** The 429. `Retry-After` is added by the respond step from `retryAfterSeconds`; the RateLimit fields here. */
function denial(fired: Hit, hits: readonly Hit[]): RateLimitedDecision {
  const limit = `${fired.kind} ${fired.namespace}/${fired.name}: ${fired.what}`;
  return {
    outcome: 'rate_limited',
    reason: fired.failedClosed ? `limit backend unavailable (failureMode closed): ${limit}` : `rate limited by ${limit}`,
    retryAfterSeconds: Number(retryAfterHeader(fired.retryAfterMs).value),
    limit,
    headers: rateLimitHeaders(hits.filter((h) => h.advertise).map((h) => h.header)),
  };
}

export interface LimitsStageDeps {
  engine: RateLimitEngine;
  quotas: QuotaService;
}

/** What applies to one destination workload (computed once per workload per snapshot). */
interface Applicable {
  rateLimits: readonly CompiledRateLimitPolicy[];
  quotas: readonly CompiledQuotaPolicy[];
}

/** Nothing fired, nothing shadowed, no headers wanted: record the policies and continue. */
function quiet(rl: readonly [CompiledRateLimitPolicy, RateLimitVerdict][]): boolean {
  for (const [p, v] of rl) {
    if (v.overall !== 'OK' || p.responseHeaders) return false;
    for (const s of v.statuses) if (s.shadowed) return false;
  }
  return true;
}

/** The stage for one snapshot (pure compile; counters live in the engine and quota stores). */
export function createLimitsStage(snapshot: ConfigSnapshot, deps: LimitsStageDeps): Stage {
  const rateLimits = compileRateLimits(snapshot).policies.filter((p) => p.requestDescriptors.length > 0);
  const quotas: readonly CompiledQuotaPolicy[] = compileQuotaPolicies(snapshot);
  // A quota on an unconfigured store fails the compile, so the previous pipeline keeps serving.
  deps.quotas.validate(quotas);
  const root = snapshot.mesh.rootNamespace;
  // The authz workload resolver hands out one frozen Workload per destination, so identity works.
  const byWorkload = new WeakMap<object, Applicable>();
  const applicableTo = (ctx: CheckContext): Applicable => {
    let a = byWorkload.get(ctx.workload);
    if (!a) {
      a = { rateLimits: rateLimits.filter((p) => applies(p, ctx, root)), quotas: quotas.filter((q) => applies(q, ctx, root)) };
      byWorkload.set(ctx.workload, a);
    }
    return a;
  };

  const finish = (ctx: CheckContext, rl: [CompiledRateLimitPolicy, RateLimitVerdict][], qs: QuotaCheck[]): StageResult => {
    if (qs.length === 0 && quiet(rl)) {
      for (const [p] of rl) ctx.matchedPolicies.push({ kind: 'RateLimitPolicy', namespace: p.namespace, name: p.name });
      return undefined;
    }
    const hits = [...rl.flatMap(([p, v]) => rateLimitHits(p, v)), ...qs.map(quotaHit)];
    ctx.matchedPolicies.push(...matched(hits, [...rl.map(([p]) => ({ kind: 'RateLimitPolicy' as const, namespace: p.namespace, name: p.name })), ...qs.map((q) => ({ kind: 'QuotaPolicy' as const, namespace: q.policy.namespace, name: q.policy.name }))]));
    const fired = hits.find((h) => h.over);
    if (fired) return denial(fired, hits);
    for (const h of rateLimitHeaders(hits.filter((x) => x.advertise && x.onAllow).map((x) => x.header))) ctx.mutations.responseHeaders.push(h);
    return undefined;
  };

  const runQuotas = async (ctx: CheckContext, attrs: LimitRequestAttributes, applicable: readonly CompiledQuotaPolicy[], rl: [CompiledRateLimitPolicy, RateLimitVerdict][]): Promise<StageResult> => {
    const checks = (await Promise.all(applicable.map((q) => deps.quotas.consume(q, attrs)))).filter((c): c is QuotaCheck => c !== undefined);
    return finish(ctx, rl, checks);
  };

  // A named function, not a per-request closure: no allocation on the synchronous path.
  function afterRateLimits(ctx: CheckContext, attrs: LimitRequestAttributes, applicable: Applicable, rl: [CompiledRateLimitPolicy, RateLimitVerdict][]): StageResult | Promise<StageResult> {
    // A request over a rate limit is refused before it can consume quota.
    if (applicable.quotas.length === 0 || rl.some(([, v]) => v.overall === 'OVER_LIMIT')) return finish(ctx, rl, []);
    return runQuotas(ctx, attrs, applicable.quotas, rl);
  }

  /** The common case, one rate-limit policy and no quota: no intermediate arrays when nothing fires. */
  function runOne(ctx: CheckContext, p: CompiledRateLimitPolicy, attrs: LimitRequestAttributes): StageResult | Promise<StageResult> {
    const descriptors = buildDescriptors(p.requestDescriptors, attrs);
    if (descriptors.length === 0) return undefined;
    const v = deps.engine.decide(p, p.domain, descriptors);
    if (v instanceof Promise) return v.then((verdict) => finish(ctx, [[p, verdict]], []));
    return finish(ctx, [[p, v]], []);
  }

  return {
    name: LIMITS_STAGE,
    run(ctx) {
      const applicable = applicableTo(ctx);
      if (applicable.rateLimits.length === 0 && applicable.quotas.length === 0) return undefined;
      const attrs = attributesOf(ctx);
      if (applicable.rateLimits.length === 1 && applicable.quotas.length === 0) return runOne(ctx, applicable.rateLimits[0]!, attrs);
      const pending: [CompiledRateLimitPolicy, RateLimitVerdict | Promise<RateLimitVerdict>][] = [];
      let async = false;
      for (const p of applicable.rateLimits) {
        const descriptors = buildDescriptors(p.requestDescriptors, attrs);
        if (descriptors.length === 0) continue;
        const v = deps.engine.decide(p, p.domain, descriptors);
        if (v instanceof Promise) async = true;
        pending.push([p, v]);
      }
      if (!async) return afterRateLimits(ctx, attrs, applicable, pending as [CompiledRateLimitPolicy, RateLimitVerdict][]);
      return Promise.all(pending.map(async ([p, v]) => [p, await v] as [CompiledRateLimitPolicy, RateLimitVerdict]))
        .then((rl) => afterRateLimits(ctx, attrs, applicable, rl));
    },
  };
}

/** The factory the authz capability's pipeline compiles per snapshot. */
export function limitsStageFactory(deps: LimitsStageDeps): StageFactory {
  return { name: LIMITS_STAGE, compile: (snapshot) => createLimitsStage(snapshot, deps) };
}
