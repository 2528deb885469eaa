/**
 * PostgreSQL audit store (`pg`). Same schema and semantics as SQLite. Each batch takes a
 * transaction-scoped advisory lock, reads the head and inserts with one `unnest` statement, so
 * several meshward replicas can share one table and one chain.
 */
import type pg from 'pg';
import { createPgPool, inPgTransaction } from '../lib/pg-pool.ts';
import { chainBatch, type ChainAnchor, GENESIS_HASH } from './chain.ts';
import { AuditStoreUnavailableError } from './errors.ts';
import { type AuditFilter, type AuditQuery, type SqlDialect, whereClause } from './query.ts';
import type { AuditRow, PreparedRecord } from './row.ts';
import { type AuditStore, checkTablePrefix, DEFAULT_TABLE_PREFIX, INSERT_COLUMNS, ROW_COLUMNS, type RetentionResult, type StatsBucket } from './store.ts';

export interface PostgresStoreOptions {
  connectionString: string;
  tablePrefix?: string;
  /** Pool size (the writer uses one connection; readers the rest). */
  maxConnections?: number;
}

const DIALECT: SqlDialect = {
  startsWith: (column) => `substr(${column}, 1, ?::int) = ?`,
  contains: (column) => `strpos(${column}, ?) > 0`,
};

/** `?` placeholders to `$1..$n` (our SQL has no other question marks). */
function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

function schema(p: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${p}records (
      seq BIGINT PRIMARY KEY,
      decision_id TEXT NOT NULL,
      time BIGINT NOT NULL,
      decision TEXT NOT NULL,
      status INTEGER NOT NULL,
      source_principal TEXT,
      request_principal TEXT,
      destination TEXT,
      method TEXT,
      path TEXT,
      config_version TEXT NOT NULL,
      policies TEXT NOT NULL,
      body TEXT NOT NULL,
      prev_hash TEXT NOT NULL,
      hash TEXT NOT NULL
    )`,
    `CREATE INDEX IF NOT EXISTS ${p}records_decision_id ON ${p}records (decision_id)`,
    `CREATE INDEX IF NOT EXISTS ${p}records_time ON ${p}records (time)`,
    `CREATE TABLE IF NOT EXISTS ${p}anchors (
      seq BIGINT PRIMARY KEY,
      hash TEXT NOT NULL,
      deleted BIGINT NOT NULL,
      cutoff BIGINT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
  ];
}

type Queryable = Pick<pg.PoolClient, 'query'>;

/** BIGINT and COUNT come back as strings; every number we store fits a double. */
function toRow(r: Record<string, unknown>): AuditRow {
  return { ...(r as unknown as AuditRow), seq: Number(r.seq), time: Number(r.time) };
}

export class PostgresAuditStore implements AuditStore {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #p: string;
  /** The last append failed: it may still have committed (see #alreadyCommitted). */
  #outcomeUnknown = false;

  private constructor(pool: pg.Pool, prefix: string) {
    this.#pool = pool;
    this.#p = prefix;
  }

  /** Connects and creates the tables when missing. */
  static async open(options: PostgresStoreOptions): Promise<PostgresAuditStore> {
    const prefix = checkTablePrefix(options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
    const pool = createPgPool({ connectionString: options.connectionString, max: options.maxConnections ?? 4 });
    const store = new PostgresAuditStore(pool, prefix);
    try {
      await store.#transaction(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:${prefix}`]);
        for (const stmt of schema(prefix)) await c.query(stmt);
      });
    } catch (err) {
      await pool.end().catch(() => {});
      throw new AuditStoreUnavailableError(`cannot open the PostgreSQL audit store: ${(err as Error).message}`, err);
    }
    return store;
  }

  #transaction<T>(fn: (client: Queryable) => Promise<T>): Promise<T> {
    return inPgTransaction(this.#pool, fn);
  }

  async #lock(c: Queryable): Promise<void> {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meshward:${this.#p}`]);
  }

  async #anchorOf(c: Queryable): Promise<ChainAnchor> {
    const r = await c.query(`SELECT seq, hash FROM ${this.#p}anchors ORDER BY seq DESC LIMIT 1`);
    const a = r.rows[0] as { seq: string; hash: string } | undefined;
    return a ? { seq: Number(a.seq), hash: a.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  async #headOf(c: Queryable): Promise<ChainAnchor> {
    const r = await c.query(`SELECT seq, hash FROM ${this.#p}records ORDER BY seq DESC LIMIT 1`);
    const h = r.rows[0] as { seq: string; hash: string } | undefined;
    return h ? { seq: Number(h.seq), hash: h.hash } : this.#anchorOf(c);
  }

  async append(records: readonly PreparedRecord[]): Promise<{ firstSeq: number; lastSeq: number }> {
    if (records.length === 0) return { firstSeq: 0, lastSeq: 0 };
    try {
      const written = await this.#transaction(async (c) => {
        await this.#lock(c);
        const committed = this.#outcomeUnknown ? await this.#alreadyCommitted(c, records) : undefined;
        const missing = committed ? records.filter((r) => !committed.has(r.decisionId)) : records;
        if (missing.length === 0) return { firstSeq: Math.min(...committed!.values()), lastSeq: Math.max(...committed!.values()) };
        const links = chainBatch(await this.#headOf(c), missing);
        const rows = missing.map((r, i) => ({ ...r, ...links[i]! }));
        const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
        await c.query(
          `INSERT INTO ${this.#p}records (${INSERT_COLUMNS}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])`,
          [col('seq'), col('decisionId'), col('time'), col('decision'), col('status'), col('sourcePrincipal'), col('requestPrincipal'), col('destination'), col('method'), col('path'), col('configVersion'), col('policies'), col('body'), col('prevHash'), col('hash')],
        );
        return { firstSeq: committed?.size ? Math.min(...committed.values()) : rows[0]!.seq, lastSeq: rows.at(-1)!.seq };
      });
      this.#outcomeUnknown = false;
      return written;
    } catch (err) {
      // The COMMIT may have reached the server even though its reply did not reach us.
      this.#outcomeUnknown = true;
      throw new AuditStoreUnavailableError(`audit write failed: ${(err as Error).message}`, err);
    }
  }

  /**
   * After a failed append, the records of the retried batch that the failed one did commit (its
   * COMMIT reached the server, the reply was lost), by decision id with their seq, so the retry
   * writes each decision once. Decision ids are UUIDv7 made by this process; one lookup per retry.
   */
  async #alreadyCommitted(c: Queryable, records: readonly PreparedRecord[]): Promise<Map<string, number>> {
    const r = await c.query(`SELECT decision_id, seq FROM ${this.#p}records WHERE decision_id = ANY($1::text[])`, [records.map((x) => x.decisionId)]);
    return new Map((r.rows as { decision_id: string; seq: string }[]).map((row) => [row.decision_id, Number(row.seq)]));
  }

  async #select(sql: string, params: unknown[]): Promise<AuditRow[]> {
    try {
      const r = await this.#pool.query(numbered(sql), params);
      return r.rows.map(toRow);
    } catch (err) {
      throw new AuditStoreUnavailableError(`audit query failed: ${(err as Error).message}`, err);
    }
  }

  query(q: AuditQuery & { limit: number }): Promise<AuditRow[]> {
    const where = whereClause(q, DIALECT);
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    return this.#select(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records ${where.sql} ORDER BY seq ${order} LIMIT ?`, [...where.params, q.limit]);
  }

  async get(decisionId: string): Promise<AuditRow | undefined> {
    return (await this.#select(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records WHERE decision_id = ? ORDER BY seq LIMIT 1`, [decisionId]))[0];
  }

  async stats(filter: AuditFilter, intervalMs: number): Promise<StatsBucket[]> {
    const where = whereClause(filter, DIALECT);
    try {
      const r = await this.#pool.query(numbered(`SELECT (time / ?::bigint) * ?::bigint AS start, decision, COUNT(*) AS count FROM ${this.#p}records ${where.sql} GROUP BY 1, 2 ORDER BY 1, 2`), [intervalMs, intervalMs, ...where.params]);
      return r.rows.map((b: { start: string; decision: string; count: string }) => ({ start: Number(b.start), decision: b.decision, count: Number(b.count) }));
    } catch (err) {
      throw new AuditStoreUnavailableError(`audit query failed: ${(err as Error).message}`, err);
    }
  }

  scan(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return this.#select(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records WHERE seq > ? ORDER BY seq LIMIT ?`, [afterSeq, limit]);
  }

  async anchor(): Promise<ChainAnchor> {
    return this.#anchorOf(this.#pool);
  }

  async head(): Promise<ChainAnchor> {
    return this.#headOf(this.#pool);
  }

  async deleteBefore(cutoff: number, now: number): Promise<RetentionResult> {
    const p = this.#p;
    try {
      return await this.#transaction(async (c) => {
        await this.#lock(c);
        const keep = await c.query(`SELECT MIN(seq) AS seq FROM ${p}records WHERE time >= $1`, [cutoff]);
        const keepSeq = keep.rows[0]?.seq as string | null;
        const lastDeleted = keepSeq === null ? (await this.#headOf(c)).seq : Number(keepSeq) - 1;
        const a = await c.query(`SELECT seq, hash FROM ${p}records WHERE seq <= $1 ORDER BY seq DESC LIMIT 1`, [lastDeleted]);
        const row = a.rows[0] as { seq: string; hash: string } | undefined;
        if (!row) return { deleted: 0 };
        const anchor = { seq: Number(row.seq), hash: row.hash };
        const del = await c.query(`DELETE FROM ${p}records WHERE seq <= $1`, [anchor.seq]);
        const deleted = del.rowCount ?? 0;
        await c.query(`INSERT INTO ${p}anchors (seq, hash, deleted, cutoff, created_at) VALUES ($1, $2, $3, $4, $5)`, [anchor.seq, anchor.hash, deleted, cutoff, now]);
        return { deleted, anchor };
      });
    } catch (err) {
      throw new AuditStoreUnavailableError(`audit retention failed: ${(err as Error).message}`, err);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  /** Drops this store's tables (tests with a unique prefix clean up with it). */
  async dropTables(): Promise<void> {
    await this.#pool.query(`DROP TABLE IF EXISTS ${this.#p}records, ${this.#p}anchors`);
  }
}
