/**
 * Durable quota counters. One counter per (policy, subject, period); consuming is atomic and
 * never goes past the limit (a denied request does not burn quota). Implementations: SQLite (the
 * default, `<dataDir>/limits/quotas.db`), Redis and PostgreSQL (shared by replicas); all pass
 * `test/limits/quota-store-contract.ts`.
 */

export interface QuotaCounterRef {
  /** `namespace/name` of the QuotaPolicy. */
  policy: string;
  /** Stored subject (principals as-is; header values hashed, see `subjectId`). */
  subject: string;
  /** Period id (`2026-01-31`, `2026-01`). */
  period: string;
  /** End of the period (ms): the counter may be dropped after it. */
  expiresAt: number;
}

export interface ConsumeResult {
  allowed: boolean;
  /** Used after this request (unchanged when denied). */
  used: number;
}

/** How an operator changes a counter. */
export type QuotaAdjustment = { action: 'reset' } | { action: 'set'; used: number } | { action: 'add'; delta: number };

/** One recorded adjustment (the admin call's audit trail). Versioned: it is persisted and returned. */
export interface QuotaAdjustmentV1 {
  id: string;
  /** ms since the epoch. */
  time: number;
  /** API principal name and role that made the change. */
  actor: string;
  role: string;
  policy: string;
  subject: string;
  period: string;
  action: QuotaAdjustment['action'];
  /** `used` before and after. */
  before: number;
  after: number;
  reason: string;
}

export interface QuotaStore {
  readonly kind: 'sqlite' | 'redis' | 'postgres';
  consume(ref: QuotaCounterRef, limit: number, cost: number): Promise<ConsumeResult>;
  used(ref: QuotaCounterRef): Promise<number>;
  /** Applies an adjustment atomically; returns `used` before and after. */
  adjust(ref: QuotaCounterRef, adjustment: QuotaAdjustment): Promise<{ before: number; after: number }>;
  close(): Promise<void>;
}

/** Where adjustments are recorded (SQLite locally, PostgreSQL when configured). */
export interface AdjustmentLog {
  record(entry: QuotaAdjustmentV1): Promise<void>;
  /** Most recent first. */
  list(filter: { policy?: string; subject?: string; limit: number }): Promise<QuotaAdjustmentV1[]>;
  close(): Promise<void>;
}

/** `used` after an adjustment (never negative). */
export function applyAdjustment(before: number, a: QuotaAdjustment): number {
  switch (a.action) {
    case 'reset': return 0;
    case 'set': return Math.max(0, a.used);
    case 'add': return Math.max(0, before + a.delta);
  }
}
