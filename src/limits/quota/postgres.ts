/** Quota counters and the adjustment log in PostgreSQL, shared by every replica. */
import type pg from 'pg';
import { createPgPool, inPgTransaction } from '../../lib/pg-pool.ts';
import { LimitsBackendUnavailableError } from '../errors.ts';
import { type AdjustmentLog, type ConsumeResult, type QuotaAdjustment, type QuotaAdjustmentV1, type QuotaCounterRef, type QuotaStore, applyAdjustment } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meshward_quota_usage (
  policy TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL,
  used BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  PRIMARY KEY (policy, subject, period)
);
CREATE TABLE IF NOT EXISTS meshward_quota_adjustments (
  seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, time BIGINT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  policy TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL, action TEXT NOT NULL,
  before BIGINT NOT NULL, after BIGINT NOT NULL, reason TEXT NOT NULL
);
`;

export interface PostgresQuotaOptions {
  url: string;
  /** Per-query timeout, ms. */
  timeoutMs: number;
}

interface AdjustmentRow { id: string; time: string; actor: string; role: string; policy: string; subject: string; period: string; action: string; before: string; after: string; reason: string }

export class PostgresQuotaStore implements QuotaStore, AdjustmentLog {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  #schema?: Promise<void>;

  constructor(options: PostgresQuotaOptions) {
    this.#pool = createPgPool({ connectionString: options.url, max: 8, query_timeout: options.timeoutMs, connectionTimeoutMillis: Math.max(1000, options.timeoutMs * 5) });
  }

  /** Creates the tables once (idempotent). */
  init(): Promise<void> {
    this.#schema ??= this.#pool.query(SCHEMA).then(() => undefined, (err: unknown) => {
      this.#schema = undefined;
      throw err;
    });
    return this.#schema;
  }

  async #query<R extends pg.QueryResultRow>(sql: string, args: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      await this.init();
      return await this.#pool.query<R>(sql, args);
    } catch (err) {
      throw new LimitsBackendUnavailableError(`postgres quota store failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async consume(ref: QuotaCounterRef, limit: number, cost: number): Promise<ConsumeResult> {
    if (cost > limit) return { allowed: false, used: await this.used(ref) };
    const r = await this.#query<{ used: string }>(
      `INSERT INTO meshward_quota_usage (policy, subject, period, used, expires_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (policy, subject, period) DO UPDATE SET used = meshward_quota_usage.used + EXCLUDED.used
       WHERE meshward_quota_usage.used + EXCLUDED.used <= $6 RETURNING used`,
      [ref.policy, ref.subject, ref.period, cost, ref.expiresAt, limit]);
    const row = r.rows[0];
    return row ? { allowed: true, used: Number(row.used) } : { allowed: false, used: await this.used(ref) };
  }

  async used(ref: QuotaCounterRef): Promise<number> {
    const r = await this.#query<{ used: string }>('SELECT used FROM meshward_quota_usage WHERE policy = $1 AND subject = $2 AND period = $3', [ref.policy, ref.subject, ref.period]);
    return Number(r.rows[0]?.used ?? 0);
  }

  async adjust(ref: QuotaCounterRef, adjustment: QuotaAdjustment): Promise<{ before: number; after: number }> {
    await this.init();
    return inPgTransaction(this.#pool, async (client) => {
      await client.query(`INSERT INTO meshward_quota_usage (policy, subject, period, used, expires_at) VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING`, [ref.policy, ref.subject, ref.period, ref.expiresAt]);
      const cur = await client.query<{ used: string }>('SELECT used FROM meshward_quota_usage WHERE policy = $1 AND subject = $2 AND period = $3 FOR UPDATE', [ref.policy, ref.subject, ref.period]);
      const before = Number(cur.rows[0]?.used ?? 0);
      const after = applyAdjustment(before, adjustment);
      await client.query('UPDATE meshward_quota_usage SET used = $4 WHERE policy = $1 AND subject = $2 AND period = $3', [ref.policy, ref.subject, ref.period, after]);
      return { before, after };
    }, (err) => new LimitsBackendUnavailableError(`postgres quota adjustment failed: ${(err as Error).message}`, { cause: err }));
  }

  async record(e: QuotaAdjustmentV1): Promise<void> {
    await this.#query(`INSERT INTO meshward_quota_adjustments (id, time, actor, role, policy, subject, period, action, before, after, reason)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [e.id, e.time, e.actor, e.role, e.policy, e.subject, e.period, e.action, e.before, e.after, e.reason]);
  }

  async list(filter: { policy?: string; subject?: string; limit: number }): Promise<QuotaAdjustmentV1[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.policy) { args.push(filter.policy); where.push(`policy = $${args.length}`); }
    if (filter.subject) { args.push(filter.subject); where.push(`subject = $${args.length}`); }
    args.push(filter.limit);
    const r = await this.#query<AdjustmentRow>(`SELECT id, time, actor, role, policy, subject, period, action, before, after, reason FROM meshward_quota_adjustments
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, seq DESC LIMIT $${args.length}`, args);
    return r.rows.map((row) => ({ ...row, time: Number(row.time), before: Number(row.before), after: Number(row.after), action: row.action as QuotaAdjustmentV1['action'] }));
  }

  /** Deletes everything (tests). */
  async truncate(): Promise<void> {
    await this.#query('TRUNCATE meshward_quota_usage, meshward_quota_adjustments', []);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
