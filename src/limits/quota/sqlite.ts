/** Quota counters and the adjustment log in SQLite (WAL): the embedded default, survives restarts. */
import path from 'node:path';
import Database from 'better-sqlite3';
import { preparePrivateDatabaseFile } from '../../lib/sqlite-file.ts';
import { type AdjustmentLog, type ConsumeResult, type QuotaAdjustment, type QuotaAdjustmentV1, type QuotaCounterRef, type QuotaStore, applyAdjustment } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS quota_usage (
  policy TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL,
  used INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (policy, subject, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quota_adjustments (
  id TEXT PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
  policy TEXT NOT NULL, subject TEXT NOT NULL, period TEXT NOT NULL, action TEXT NOT NULL,
  before INTEGER NOT NULL, after INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_adjustments_time ON quota_adjustments (time DESC);
`;

interface AdjustmentRow extends Omit<QuotaAdjustmentV1, 'action'> { action: string }

/** Opens (creating) `<dir>/quotas.db`, folder 0700 and file 0600. */
export function openQuotaDatabase(dir: string): Database.Database {
  const file = path.join(dir, 'quotas.db');
  // 0600 before SQLite opens it, and never by a descriptor of an open database (sqlite-file.ts).
  preparePrivateDatabaseFile(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL: a commit survives a process crash; only an OS crash can lose the last ones.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  return db;
}

export class SqliteQuotaStore implements QuotaStore, AdjustmentLog {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #consume: Database.Statement;
  readonly #get: Database.Statement;
  readonly #put: Database.Statement;
  readonly #record: Database.Statement;
  readonly #purge: Database.Statement;

  constructor(db: Database.Database) {
    this.#db = db;
    // One statement: insert the first use, or add when it stays within the limit (no row ⇒ denied).
    this.#consume = db.prepare(`INSERT INTO quota_usage (policy, subject, period, used, expires_at) VALUES (@policy, @subject, @period, @cost, @expiresAt)
      ON CONFLICT (policy, subject, period) DO UPDATE SET used = used + excluded.used WHERE used + excluded.used <= @limit RETURNING used`);
    this.#get = db.prepare('SELECT used FROM quota_usage WHERE policy = ? AND subject = ? AND period = ?');
    this.#put = db.prepare(`INSERT INTO quota_usage (policy, subject, period, used, expires_at) VALUES (@policy, @subject, @period, @used, @expiresAt)
      ON CONFLICT (policy, subject, period) DO UPDATE SET used = excluded.used`);
    this.#record = db.prepare(`INSERT INTO quota_adjustments (id, time, actor, role, policy, subject, period, action, before, after, reason)
      VALUES (@id, @time, @actor, @role, @policy, @subject, @period, @action, @before, @after, @reason)`);
    this.#purge = db.prepare('DELETE FROM quota_usage WHERE expires_at <= ?');
  }

  async consume(ref: QuotaCounterRef, limit: number, cost: number): Promise<ConsumeResult> {
    if (cost > limit) return { allowed: false, used: await this.used(ref) };
    const row = this.#consume.get({ ...ref, cost, limit }) as { used: number } | undefined;
    return row ? { allowed: true, used: row.used } : { allowed: false, used: await this.used(ref) };
  }

  async used(ref: QuotaCounterRef): Promise<number> {
    const row = this.#get.get(ref.policy, ref.subject, ref.period) as { used: number } | undefined;
    return row?.used ?? 0;
  }

  async adjust(ref: QuotaCounterRef, adjustment: QuotaAdjustment): Promise<{ before: number; after: number }> {
    return this.#db.transaction(() => {
      const before = (this.#get.get(ref.policy, ref.subject, ref.period) as { used: number } | undefined)?.used ?? 0;
      const after = applyAdjustment(before, adjustment);
      this.#put.run({ ...ref, used: after });
      return { before, after };
    }).immediate();
  }

  /** Drops counters of ended periods. */
  purgeExpired(now: number): number {
    return this.#purge.run(now).changes;
  }

  async record(entry: QuotaAdjustmentV1): Promise<void> {
    this.#record.run(entry);
  }

  async list(filter: { policy?: string; subject?: string; limit: number }): Promise<QuotaAdjustmentV1[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.policy) { where.push('policy = ?'); args.push(filter.policy); }
    if (filter.subject) { where.push('subject = ?'); args.push(filter.subject); }
    const sql = `SELECT * FROM quota_adjustments ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, rowid DESC LIMIT ?`;
    return (this.#db.prepare(sql).all(...args, filter.limit) as AdjustmentRow[]).map((r) => ({ ...r, action: r.action as QuotaAdjustmentV1['action'] }));
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
