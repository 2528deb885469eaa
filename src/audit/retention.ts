/**
 * The retention loop: deletes records older than `Mesh.spec.audit.retention` at start and then
 * every retention/24 (between 1 minute and 1 hour). Deletion moves the chain anchor, so
 * verification still passes.
 */
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, type Registry } from '../lib/metrics.ts';

export interface RetentionOptions {
  apply: () => Promise<number>;
  retentionMs: () => number;
  clock: Clock;
  logger: Logger;
  registry: Registry;
}

export function retentionPeriodMs(retentionMs: number): number {
  return Math.min(3_600_000, Math.max(60_000, Math.floor(retentionMs / 24)));
}

/** Starts the loop; returns the stop function. */
export function startRetention(options: RetentionOptions): () => void {
  const deleted = counter(options.registry, 'meshward_audit_retention_deleted_total', 'Decision records deleted by retention.');
  const failures = counter(options.registry, 'meshward_audit_retention_failures_total', 'Failed retention runs.');
  let cancel: (() => void) | undefined;
  let stopped = false;
  const run = async () => {
    try {
      const n = await options.apply();
      if (n > 0) {
        deleted.inc(n);
        options.logger.info({ deleted: n }, 'audit retention deleted old decision records');
      }
    } catch (err) {
      failures.inc();
      options.logger.error({ err }, 'audit retention failed');
    }
    if (!stopped) cancel = options.clock.setTimer(retentionPeriodMs(options.retentionMs()), () => void run());
  };
  void run();
  return () => {
    stopped = true;
    cancel?.();
  };
}
