/**
 * The `audit` capability: opens the store, runs the batched log and retention, registers the
 * auditor API and the client-certificate verifier. ext_authz reaches it with
 * `ctx.get<AuditCapability>('audit').append(record)`.
 */
import type { FastifyInstance } from 'fastify';
import { parseDuration } from '../config/index.ts';
import type { AuditSettings } from '../config/kinds/mesh.ts';
import type { Capability, CapabilityContext } from '../server/capability.ts';
import { AuditLog, type AuditLogStats } from './audit-log.ts';
import type { VerifyReport } from './chain.ts';
import type { SignedCheckpoint } from './checkpoint.ts';
import { checkpointDir, loadOrCreateCheckpointKey } from './checkpoint-key.ts';
import { Checkpointer } from './checkpointer.ts';
import { clientCertificateVerifier } from './client-cert.ts';
import { openAuditStore } from './open.ts';
import type { AuditQuery } from './query.ts';
import { type DecisionPage, getDecision, queryDecisions, verifyChain } from './reader.ts';
import type { DecisionRecordV1, InputBytes } from './record.ts';
import { startRetention } from './retention.ts';
import { auditRoutes } from './routes.ts';
import type { StoredDecisionV1 } from './row.ts';
import type { AuditStore } from './store.ts';

export interface AuditCapability extends Capability {
  readonly name: 'audit';
  /**
   * Enqueues a decision (microseconds; masking and writing happen in the background batch): true.
   * When the queue is full, `audit.onOverload` decides (AuditLog.append): a promise to await
   * before answering (backpressure), false (drop, counted) or a thrown AUDIT_OVERLOADED (fail).
   * Do not mutate the record after.
   */
  append(record: DecisionRecordV1, inputBytes?: InputBytes): boolean | Promise<void>;
  /** Undefined, or while the queue is full (backpressure) a promise to await before taking a new request. */
  readable(): Promise<void> | undefined;
  /** Resolves when everything appended so far is durable. */
  flush(): Promise<void>;
  query(q: AuditQuery): Promise<DecisionPage>;
  get(decisionId: string): Promise<StoredDecisionV1>;
  verify(): Promise<VerifyReport>;
  /** Applies retention now; returns how many records were deleted. */
  applyRetention(): Promise<number>;
  stats(): AuditLogStats;
  /** Signs and publishes a checkpoint of the head now (unless unchanged); the timer does this every N records / T seconds. */
  checkpoint(): Promise<SignedCheckpoint | undefined>;
  /** The underlying store (CLI-style readers, tests). */
  readonly store: AuditStore;
}

export interface AuditCapabilityOptions {
  /** Table prefix (tests sharing one PostgreSQL database). */
  tablePrefix?: string;
  batchSize?: number;
  flushIntervalMs?: number;
  /** Wraps the store the log writes to (tests: a store made slow or blocked). */
  wrapStore?: (store: AuditStore) => AuditStore;
}

/**
 * @example
 * // src/capabilities.ts
 * export const CAPABILITIES = [createAuditCapability, createAuthzCapability];
 */
export async function createAuditCapability(ctx: CapabilityContext, options: AuditCapabilityOptions = {}): Promise<AuditCapability> {
  const settings = (): AuditSettings => ctx.config.current().mesh.audit;
  const initial = settings();
  const logger = ctx.logger.child({ component: 'audit' });
  if (initial.store === 'sqlite' && ctx.options.databaseUrl) {
    // An explicit setting wins over the URL; say so, since the URL alone would have meant PostgreSQL.
    logger.warn({ configured: 'sqlite', databaseUrl: 'set' }, 'Mesh audit.store is sqlite: the audit log stays in SQLite under the data dir although a database URL is given (--database-url / MESHWARD_DATABASE_URL); set audit.store: auto or postgres to use PostgreSQL');
  }
  const store = await openAuditStore({
    store: initial.store,
    dataDir: ctx.options.dataDir,
    ...(ctx.options.databaseUrl ? { databaseUrl: ctx.options.databaseUrl } : {}),
    ...(options.tablePrefix ? { tablePrefix: options.tablePrefix } : {}),
    synchronous: initial.sync,
  });
  const log = new AuditLog({
    store: options.wrapStore?.(store) ?? store, logger: ctx.logger, registry: ctx.registry, clock: ctx.clock, settings, maxQueue: initial.maxQueue,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.flushIntervalMs ? { flushIntervalMs: options.flushIntervalMs } : {}),
  });
  ctx.apiAuth.addVerifier(clientCertificateVerifier(() => settings().auditorSpiffeIds));
  const unsubscribe = ctx.config.subscribe((next, previous) => {
    const a = next.mesh.audit;
    const b = previous.mesh.audit;
    if (a.store !== b.store || a.sync !== b.sync || a.maxQueue !== b.maxQueue) logger.warn('audit store, sync and maxQueue changes apply after a restart');
  });
  const retentionMs = () => parseDuration(settings().retention);
  let stopRetention: (() => void) | undefined;
  const applyRetention = async () => (await store.deleteBefore(ctx.clock.now() - retentionMs(), ctx.clock.now())).deleted;

  const checkpointKey = loadOrCreateCheckpointKey(ctx.options.dataDir);
  const checkpointer = new Checkpointer({
    store, key: checkpointKey, dir: checkpointDir(ctx.options.dataDir), logger: ctx.logger, registry: ctx.registry, clock: ctx.clock,
    settings: () => ({ everyRecords: settings().checkpointEveryRecords, intervalMs: parseDuration(settings().checkpointInterval) }),
    written: () => log.stats().written,
  });

  logger.info({ store: store.kind, configured: initial.store, dataDir: store.kind === 'sqlite' ? ctx.options.dataDir : undefined, checkpointKeyId: checkpointKey.keyId }, 'audit store opened');
  return {
    name: 'audit',
    store,
    append: (record, inputBytes) => log.append(record, inputBytes),
    readable: () => log.readable(),
    flush: () => log.flush(),
    query: (q) => queryDecisions(store, q),
    get: (id) => getDecision(store, id),
    verify: () => verifyChain(store),
    applyRetention,
    stats: () => log.stats(),
    checkpoint: () => checkpointer.checkpoint(),
    registerHttp(app: FastifyInstance) {
      auditRoutes(app, { store: () => store, requireAuditor: ctx.apiAuth.require('auditor'), now: () => ctx.clock.now(),
        checkpoints: () => ({ keyId: checkpointKey.keyId, publicKey: checkpointKey.publicKeyPem, checkpoints: checkpointer.recent() }) });
    },
    async start() {
      await checkpointer.start();
      stopRetention = startRetention({ apply: applyRetention, retentionMs, clock: ctx.clock, logger, registry: ctx.registry });
    },
    async stop() {
      stopRetention?.();
      unsubscribe();
      // The last checkpoint covers everything appended before the stop (servers have drained).
      await log.flush().catch(() => {});
      await checkpointer.stop();
      await log.close();
    },
    ready: () => true,
  };
}
