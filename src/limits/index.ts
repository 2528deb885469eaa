/**
 * Rate limits and quotas: Envoy reference-service descriptors, GCRA and fixed windows, in-memory
 * and Redis counters, durable quotas (SQLite / Redis / PostgreSQL), the Envoy RLS API and the
 * ext_authz `limits` stage.
 */
export { createLimitsCapability, type LimitsCapability } from './capability.ts';
export { RateLimitEngine, type RateLimitQuery, type RateLimitVerdict, type DescriptorStatus, type FailureMode } from './engine.ts';
export { MemoryBackend } from './memory.ts';
export { RedisBackend } from './redis.ts';
export type { LimitBackend, LimitHit, LimitAlgorithm } from './backend.ts';
export { compileRateLimits, type CompiledRateLimits, type CompiledRateLimitPolicy } from './policies.ts';
export { createLimitsStage, limitsStageFactory, LIMITS_STAGE } from './stage.ts';
export { QuotaService, type QuotaStatusV1 } from './quota/service.ts';
export type { QuotaAdjustmentV1 } from './quota/store.ts';
export { RLS_SERVICE } from './rls.ts';
