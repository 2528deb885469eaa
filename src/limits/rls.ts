/**
 * `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` on the official protos, so Envoy's
 * global rate-limit filter can use meshward against the same RateLimitPolicies. The handler only
 * translates between the proto (keepCase, enums as strings) and the engine.
 */
import { type sendUnaryData, type Server, type ServerUnaryCall, status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, toGrpcStatus } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { envoyServiceDefinition } from '../lib/protos.ts';
import type { DescriptorStatus, RateLimitEngine, RateLimitQuery, RateLimitVerdict } from './engine.ts';
import { type HeaderLimit, ceilSeconds, rateLimitHeaders, retryAfterHeader } from './headers.ts';
import { unitEnumName } from './units.ts';

export const RLS_SERVICE = 'envoy.service.ratelimit.v3.RateLimitService';

interface RlsEntry { key?: string; value?: string }
interface RlsDescriptor { entries?: RlsEntry[]; limit?: { requests_per_unit?: number; unit?: string } }
export interface RlsRequest { domain?: string; descriptors?: RlsDescriptor[]; hits_addend?: number }

interface RlsDuration { seconds: string; nanos: number }
interface RlsStatus {
  code: 'OK' | 'OVER_LIMIT';
  current_limit?: { name?: string; requests_per_unit: number; unit: string };
  limit_remaining: number;
  duration_until_reset?: RlsDuration;
}
interface RlsHeader { key: string; value: string }
export interface RlsResponse { overall_code: 'OK' | 'OVER_LIMIT'; statuses: RlsStatus[]; response_headers_to_add?: RlsHeader[] }

/** Proto request → engine query (pure). */
export function queryFromRls(req: RlsRequest): RateLimitQuery {
  return {
    domain: req.domain ?? '',
    descriptors: (req.descriptors ?? []).map((d) => ({
      entries: (d.entries ?? []).map((e) => ({ key: e.key ?? '', value: e.value ?? '' })),
      ...(d.limit?.unit && d.limit.unit !== 'UNKNOWN' ? { limitOverride: { requestsPerUnit: d.limit.requests_per_unit ?? 0, unit: d.limit.unit } } : {}),
    })),
    hitsAddend: req.hits_addend ?? 0,
  };
}

function duration(ms: number): RlsDuration {
  const whole = Math.max(0, Math.ceil(ms));
  return { seconds: String(Math.floor(whole / 1000)), nanos: (whole % 1000) * 1_000_000 };
}

function statusToRls(s: DescriptorStatus): RlsStatus {
  if (!s.limit) return { code: s.code, limit_remaining: s.unlimited ? s.remaining : 0 };
  return {
    code: s.code,
    current_limit: { requests_per_unit: s.limit.requestsPerUnit, unit: unitEnumName(s.limit.unit), ...(s.limit.name ? { name: s.limit.name } : {}) },
    limit_remaining: s.remaining,
    // Over the limit: when a retry can succeed; otherwise when the counter resets (reference semantics).
    duration_until_reset: duration(s.code === 'OVER_LIMIT' ? s.retryAfterMs : s.resetMs),
  };
}

/**
 * Headers Envoy adds to the response (its 429 local reply included): `Retry-After` and the IETF
 * RateLimit fields when over the limit; the RateLimit fields on allowed responses when the policy
 * sets `responseHeaders`. Shadow-mode limits are never advertised.
 */
function responseHeaders(v: RateLimitVerdict): RlsHeader[] {
  const over = v.overall === 'OVER_LIMIT';
  if (!over && !v.policy?.responseHeaders) return [];
  const limits: HeaderLimit[] = [];
  let retryAfterMs = 0;
  for (const s of v.statuses) {
    if (!s.limit || s.unlimited || s.limit.shadowMode) continue;
    if (s.code === 'OVER_LIMIT') retryAfterMs = Math.max(retryAfterMs, s.retryAfterMs);
    limits.push({ name: s.limit.name ?? v.policy?.name ?? 'limit', quota: s.limit.requestsPerUnit, windowSeconds: s.limit.windowMs / 1000, remaining: s.remaining, resetSeconds: ceilSeconds(s.code === 'OVER_LIMIT' ? s.retryAfterMs : s.resetMs) });
  }
  const headers = [...(over ? [retryAfterHeader(retryAfterMs)] : []), ...rateLimitHeaders(limits)];
  return headers.map((h) => ({ key: h.name, value: h.value }));
}

/** Engine verdict → proto response (pure). */
export function verdictToRls(v: RateLimitVerdict): RlsResponse {
  const headers = responseHeaders(v);
  return { overall_code: v.overall, statuses: v.statuses.map(statusToRls), ...(headers.length ? { response_headers_to_add: headers } : {}) };
}

export function registerRls(server: Server, engine: RateLimitEngine, logger: Logger): void {
  const log = logger.child({ component: 'limits', api: 'rls' });
  server.addService(envoyServiceDefinition(RLS_SERVICE), {
    ShouldRateLimit(call: ServerUnaryCall<RlsRequest, RlsResponse>, callback: sendUnaryData<RlsResponse>) {
      engine.shouldRateLimit(queryFromRls(call.request)).then(
        (verdict) => callback(null, verdictToRls(verdict)),
        (err: unknown) => {
          if (!(err instanceof MeshwardError)) log.error({ err }, 'ShouldRateLimit failed');
          callback({ code: err instanceof MeshwardError ? toGrpcStatus(err) : GrpcStatus.INTERNAL, details: err instanceof MeshwardError ? err.message : 'internal error' });
        },
      );
    },
  });
}
