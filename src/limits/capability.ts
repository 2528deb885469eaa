/**
 * The `limits` capability: Envoy's RateLimitService on the shared gRPC server, the quota API on the
 * HTTP API, the `limits` stage plugged into the ext_authz pipeline, and policies recompiled on
 * every configuration snapshot. Backends are chosen by the Mesh `limits` settings at start.
 */
import path from 'node:path';
import type { Server as GrpcServer } from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { DecisionRecordV1 } from '../audit/record.ts';
import type { StageRegistry } from '../authz/stage.ts';
import type { ConfigSnapshot } from '../config/index.ts';
import { parseDuration } from '../config/index.ts';
import type { LimitsSettings } from '../config/kinds/mesh.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import type { LimitBackend } from './backend.ts';
import { RateLimitEngine } from './engine.ts';
import { LimitsStoreUnconfiguredError } from './errors.ts';
import { quotaRoutes } from './http.ts';
import { MemoryBackend } from './memory.ts';
import { compileRateLimits } from './policies.ts';
import { compileQuotaPolicies } from './quota/policies.ts';
import { quotaAdjustmentRecord } from './quota/audit-record.ts';
import { PostgresQuotaStore } from './quota/postgres.ts';
import { RedisQuotaStore } from './quota/redis.ts';
import { QuotaService } from './quota/service.ts';
import { SqliteQuotaStore, openQuotaDatabase } from './quota/sqlite.ts';
import type { AdjustmentLog, QuotaStore } from './quota/store.ts';
import { RedisBackend } from './redis.ts';
import { createLimitsRedis, loadRedisClass } from './redis-client.ts';
import { registerRls } from './rls.ts';
import { type LimitsStageDeps, limitsStageFactory } from './stage.ts';

/**
 * Where rate-limit counters live: an explicit `memory`/`redis` wins; `auto` follows the Redis URL
 * (shared counters when replicas are given one Redis, in-process otherwise).
 */
export function limitBackendKind(configured: LimitsSettings['backend'], redisUrl: string | undefined): LimitBackend['kind'] {
  if (configured !== 'auto') return configured;
  return redisUrl ? 'redis' : 'memory';
}

/** Quota stores talk to PostgreSQL/Redis with a looser timeout than per-request rate limits. */
const MIN_QUOTA_TIMEOUT_MS = 100;

export interface LimitsCapability extends Capability {
  readonly name: 'limits';
  readonly engine: RateLimitEngine;
  readonly quotas: QuotaService;
  /** The ext_authz stage factory (already added to `authz` when that capability is built first). */
  stageFactory(): ReturnType<typeof limitsStageFactory>;
}

function isStageRegistry(c: unknown): c is StageRegistry {
  return typeof (c as Partial<StageRegistry> | undefined)?.addStage === 'function';
}

export async function createLimitsCapability(ctx: CapabilityContext): Promise<LimitsCapability> {
  const log = ctx.logger.child({ component: 'limits' });
  const initial = ctx.config.current();
  const settings = initial.mesh.limits;
  const timeoutMs = parseDuration(settings.timeout);

  let redis: Redis | undefined;
  const RedisImpl = ctx.options.redisUrl ? await loadRedisClass() : undefined;
  const redisClient = (): Redis | undefined => {
    if (!ctx.options.redisUrl || !RedisImpl) return undefined;
    redis ??= createLimitsRedis({ url: ctx.options.redisUrl, timeoutMs, logger: ctx.logger, registry: ctx.registry, role: 'limits' }, RedisImpl);
    return redis;
  };

  let backend: LimitBackend;
  if (limitBackendKind(settings.backend, ctx.options.redisUrl) === 'redis') {
    const client = redisClient();
    if (!client) throw new LimitsStoreUnconfiguredError('Mesh limits.backend is "redis" but no Redis is configured (--redis-url / MESHWARD_REDIS_URL)');
    backend = new RedisBackend(client);
  } else {
    backend = new MemoryBackend();
  }

  // Opened (creating <data>/limits/quotas.db) only when SQLite holds quotas: the auto store and
  // the adjustment log without a database, or a QuotaPolicy with `store: sqlite` (at policy install).
  let sqlite: SqliteQuotaStore | undefined;
  const sqliteStore = (): SqliteQuotaStore => {
    sqlite ??= new SqliteQuotaStore(openQuotaDatabase(path.join(ctx.options.dataDir, 'limits')));
    return sqlite;
  };
  let postgres: PostgresQuotaStore | undefined;
  const postgresStore = (): PostgresQuotaStore | undefined => {
    if (!ctx.options.databaseUrl) return undefined;
    postgres ??= new PostgresQuotaStore({ url: ctx.options.databaseUrl, timeoutMs: Math.max(MIN_QUOTA_TIMEOUT_MS, timeoutMs) });
    return postgres;
  };
  let redisQuota: RedisQuotaStore | undefined;
  const stores = (kind: 'auto' | 'sqlite' | 'redis' | 'postgres'): QuotaStore | undefined => {
    if (kind === 'auto') return postgresStore() ?? sqliteStore();
    if (kind === 'sqlite') return sqliteStore();
    if (kind === 'postgres') return postgresStore();
    const client = redisClient();
    if (!client) return undefined;
    redisQuota ??= new RedisQuotaStore(client);
    return redisQuota;
  };
  // Adjustments are recorded durably: in PostgreSQL when configured (shared by replicas), else SQLite.
  const adjustmentLog: AdjustmentLog = postgresStore() ?? sqliteStore();

  const engine = new RateLimitEngine({ backend, clock: ctx.clock, logger: ctx.logger, registry: ctx.registry, failureMode: settings.failureMode });
  const quotas = new QuotaService({
    stores, log: adjustmentLog, clock: ctx.clock, logger: ctx.logger, registry: ctx.registry, failureMode: settings.failureMode,
    onAdjusted: (adjustment) => {
      // Looked up at event time: the audit capability may be built after this one.
      const audit = ctx.find<Capability & { append?(record: DecisionRecordV1): boolean }>('audit');
      audit?.append?.(quotaAdjustmentRecord(adjustment, ctx.config.current().version));
    },
  });

  const apply = (snapshot: ConfigSnapshot): void => {
    quotas.setPolicies(compileQuotaPolicies(snapshot));
    engine.setPolicies(compileRateLimits(snapshot));
    engine.setFailureMode(snapshot.mesh.limits.failureMode);
    quotas.setFailureMode(snapshot.mesh.limits.failureMode);
    if (limitBackendKind(snapshot.mesh.limits.backend, ctx.options.redisUrl) !== backend.kind) {
      log.warn({ configured: snapshot.mesh.limits.backend, running: backend.kind }, 'limits.backend changed: takes effect on restart');
    }
  };
  apply(initial);
  log.info({
    backend: backend.kind, configured: settings.backend, redis: ctx.options.redisUrl ? 'set' : 'unset',
    quotaAutoStore: ctx.options.databaseUrl ? 'postgres' : 'sqlite', adjustmentLog: postgres ? 'postgres' : 'sqlite',
  }, 'limits backends chosen (rate-limit counters; QuotaPolicy store auto)');
  const unsubscribe = ctx.config.subscribe((snapshot) => {
    try {
      apply(snapshot);
    } catch (err) {
      log.error({ err, version: snapshot.version }, 'limits policies rejected; keeping the previous ones');
    }
  });

  const deps: LimitsStageDeps = { engine, quotas };
  const factory = limitsStageFactory(deps);
  const authz = ctx.find('authz');
  if (isStageRegistry(authz)) authz.addStage(factory, { after: 'authorize' });
  else log.info('no authz capability with addStage: the limits stage is not in the ext_authz pipeline');

  const purge = () => sqlite?.purgeExpired(ctx.clock.now());
  let cancelPurge: (() => void) | undefined;
  const schedulePurge = () => {
    cancelPurge = ctx.clock.setTimer(3_600_000, () => {
      purge();
      schedulePurge();
    });
  };

  return {
    name: 'limits',
    engine,
    quotas,
    stageFactory: () => factory,
    registerGrpc(server: GrpcServer) {
      registerRls(server, engine, ctx.logger);
    },
    registerHttp(app: FastifyInstance) {
      quotaRoutes(app, { auth: ctx.apiAuth, quotas: () => quotas });
    },
    async start() {
      purge();
      schedulePurge();
    },
    async stop() {
      cancelPurge?.();
      unsubscribe();
      await backend.close();
      await sqlite?.close();
      await postgres?.close();
      redis?.disconnect();
    },
  };
}
