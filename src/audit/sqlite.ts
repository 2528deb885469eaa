/**
 * SQLite audit store (better-sqlite3, WAL). A batch is one IMMEDIATE transaction: read the head,
 * chain, insert. With `synchronous=NORMAL` (the default) a committed batch survives a killed
 * process; `synchronous=FULL` also survives power loss, at one fsync per batch.
 */
import Database from 'better-sqlite3';
import { preparePrivateDatabaseFile } from '../lib/sqlite-file.ts';
import { chainBatch, type ChainAnchor, GENESIS_HASH } from './chain.ts';
import { AuditStoreUnavailableError } from './errors.ts';
import { type AuditQuery, type SqlDialect, whereClause } from './query.ts';
import type { WireRecord } from './batch-codec.ts';
import type { AuditRow, PreparedRecord } from './row.ts';
import { type AuditStore, checkTablePrefix, DEFAULT_TABLE_PREFIX, INSERT_COLUMNS, ROW_COLUMNS as COMMON_ROW_COLUMNS, type RetentionResult, type StatsBucket } from './store.ts';

/** Bodies written by the writer thread are stored as their UTF-8 bytes; CAST reads both forms as text. */
const ROW_COLUMNS = COMMON_ROW_COLUMNS.replace(' body,', ' CAST(body AS TEXT) AS body,');
import type { AuditFilter } from './query.ts';

export interface SqliteStoreOptions {
  /** The database file, e.g. `<dataDir>/audit/audit.db`. */
  file: string;
  tablePrefix?: string;
  /** `normal`: survives a process crash (default). `full`: also survives power loss. */
  synchronous?: 'normal' | 'full';
  /** Open for reading only (the CLI against a running server's file). */
  readonly?: boolean;
  /** Nice value of the writer thread (Linux; default 10, lower priority than the event loop). */
  writerNice?: number;
}

export const DEFAULT_WRITER_NICE = 10;

/** WAL size that triggers an automatic checkpoint. */
const WAL_CHECKPOINT_BYTES = 32 * 1024 * 1024;

const DIALECT: SqlDialect = {
  startsWith: (column) => `substr(${column}, 1, ?) = ?`,
  contains: (column) => `instr(${column}, ?) > 0`,
};

function schema(p: string): string {
  return `
    CREATE TABLE IF NOT EXISTS ${p}records (
      seq INTEGER PRIMARY KEY,
      decision_id TEXT NOT NULL,
      time INTEGER NOT NULL,
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
    );
    CREATE INDEX IF NOT EXISTS ${p}records_decision_id ON ${p}records (decision_id);
    CREATE INDEX IF NOT EXISTS ${p}records_time ON ${p}records (time);
    CREATE TABLE IF NOT EXISTS ${p}anchors (
      seq INTEGER PRIMARY KEY,
      hash TEXT NOT NULL,
      deleted INTEGER NOT NULL,
      cutoff INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );`;
}

export class SqliteAuditStore implements AuditStore {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #p: string;
  readonly #insert: Database.Statement;
  readonly #appendTx: (records: readonly (PreparedRecord | WireRecord)[]) => { firstSeq: number; lastSeq: number };

  constructor(options: SqliteStoreOptions) {
    this.#p = checkTablePrefix(options.tablePrefix ?? DEFAULT_TABLE_PREFIX);
    try {
      // 0600 before SQLite creates it (-wal and -shm copy its mode), without dropping this process's locks.
      if (!options.readonly) preparePrivateDatabaseFile(options.file);
      this.#db = new Database(options.file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
      if (!options.readonly) {
        // 16 KiB pages for a new file (an existing one keeps its size): ≈ 11 rows of ≈ 1.4 KB per
        // page instead of ≈ 2, so fewer page splits and WAL frames per record (writer thread
        // ≈ 10 % less CPU). Must precede the first write (switching to WAL is one).
        this.#db.pragma('page_size = 16384');
        this.#db.pragma('journal_mode = WAL');
        this.#db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
        // Checkpoint every ~32 MB of WAL instead of 4 MB: at tens of thousands of records/s the
        // default checkpoints (each with an fsync) many times a second. Truncate the WAL afterwards.
        const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
        this.#db.pragma(`wal_autocheckpoint = ${Math.max(1000, Math.floor(WAL_CHECKPOINT_BYTES / pageSize))}`);
        this.#db.pragma('journal_size_limit = 67108864');
        this.#db.exec(schema(this.#p));
      }
      this.#db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new AuditStoreUnavailableError(`cannot open the audit database ${options.file}: ${(err as Error).message}`, err);
    }
    const p = this.#p;
    this.#insert = this.#db.prepare(`INSERT INTO ${p}records (${INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const tx = this.#db.transaction((records: readonly (PreparedRecord | WireRecord)[]) => {
      const links = chainBatch(this.#headSync(), records);
      const insert = this.#insert;
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const l = links[i]!;
        // Positional parameters: binding by name costs more than the insert itself.
        insert.run(l.seq, r.decisionId, r.time, r.decision, r.status, r.sourcePrincipal, r.requestPrincipal, r.destination, r.method, r.path, r.configVersion, r.policies, r.body, l.prevHash, l.hash);
      }
      return { firstSeq: links[0]?.seq ?? 0, lastSeq: links.at(-1)?.seq ?? 0 };
    });
    this.#appendTx = (records) => tx.immediate(records);
  }

  #statements = new Map<string, Database.Statement>();

  /** Prepared once per SQL text (preparing costs more than running these small queries). */
  #stmt(sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) this.#statements.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  #anchorSync(): ChainAnchor {
    const a = this.#stmt(`SELECT seq, hash FROM ${this.#p}anchors ORDER BY seq DESC LIMIT 1`).get() as ChainAnchor | undefined;
    return a ?? { seq: 0, hash: GENESIS_HASH };
  }

  #headSync(): ChainAnchor {
    const h = this.#stmt(`SELECT seq, hash FROM ${this.#p}records ORDER BY seq DESC LIMIT 1`).get() as ChainAnchor | undefined;
    return h ?? this.#anchorSync();
  }

  /** Also takes WireRecords (body as UTF-8 bytes, stored as is: reads CAST it back to text). */
  async append(records: readonly (PreparedRecord | WireRecord)[]): Promise<{ firstSeq: number; lastSeq: number }> {
    if (records.length === 0) return { firstSeq: 0, lastSeq: 0 };
    try {
      return this.#appendTx(records);
    } catch (err) {
      throw new AuditStoreUnavailableError(`audit write failed: ${(err as Error).message}`, err);
    }
  }

  async query(q: AuditQuery & { limit: number }): Promise<AuditRow[]> {
    const where = whereClause(q, DIALECT);
    const order = q.order === 'asc' ? 'ASC' : 'DESC';
    return this.#db.prepare(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records ${where.sql} ORDER BY seq ${order} LIMIT ?`).all(...where.params, q.limit) as AuditRow[];
  }

  async get(decisionId: string): Promise<AuditRow | undefined> {
    return this.#stmt(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records WHERE decision_id = ? ORDER BY seq LIMIT 1`).get(decisionId) as AuditRow | undefined;
  }

  async stats(filter: AuditFilter, intervalMs: number): Promise<StatsBucket[]> {
    const where = whereClause(filter, DIALECT);
    return this.#db.prepare(`SELECT (time / CAST(? AS INTEGER)) * CAST(? AS INTEGER) AS start, decision, COUNT(*) AS count FROM ${this.#p}records ${where.sql} GROUP BY start, decision ORDER BY start, decision`)
      .all(intervalMs, intervalMs, ...where.params) as StatsBucket[];
  }

  async scan(afterSeq: number, limit: number): Promise<AuditRow[]> {
    return this.#stmt(`SELECT ${ROW_COLUMNS} FROM ${this.#p}records WHERE seq > ? ORDER BY seq LIMIT ?`).all(afterSeq, limit) as AuditRow[];
  }

  async anchor(): Promise<ChainAnchor> {
    return this.#anchorSync();
  }

  async head(): Promise<ChainAnchor> {
    return this.#headSync();
  }

  async deleteBefore(cutoff: number, now: number): Promise<RetentionResult> {
    const p = this.#p;
    const run = this.#db.transaction((): RetentionResult => {
      const keep = this.#db.prepare(`SELECT MIN(seq) AS seq FROM ${p}records WHERE time >= ?`).get(cutoff) as { seq: number | null };
      const lastDeleted = keep.seq === null ? this.#headSync().seq : keep.seq - 1;
      const anchorRow = this.#db.prepare(`SELECT seq, hash FROM ${p}records WHERE seq <= ? ORDER BY seq DESC LIMIT 1`).get(lastDeleted) as ChainAnchor | undefined;
      if (!anchorRow) return { deleted: 0 };
      const { changes } = this.#db.prepare(`DELETE FROM ${p}records WHERE seq <= ?`).run(anchorRow.seq);
      this.#db.prepare(`INSERT INTO ${p}anchors (seq, hash, deleted, cutoff, created_at) VALUES (?, ?, ?, ?, ?)`).run(anchorRow.seq, anchorRow.hash, changes, cutoff, now);
      return { deleted: changes, anchor: anchorRow };
    });
    try {
      return run.immediate();
    } catch (err) {
      throw new AuditStoreUnavailableError(`audit retention failed: ${(err as Error).message}`, err);
    }
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
