/**
 * Issued-certificate records (SQLite, `<dataDir>/ca/certificates.db`): serial, SPIFFE ID,
 * validity, who asked and how. Inserts are group-committed: the records of one event-loop turn
 * (at most 512) go into one transaction, and `add` resolves once that transaction has committed,
 * so a caller that awaits it never answers for a certificate whose record could still be lost
 * when the process dies. `list` and `close` flush first.
 */
import Database from 'better-sqlite3';
import { preparePrivateDatabaseFile } from '../lib/sqlite-file.ts';
import { boundedMemo } from '../lib/bounded-memo.ts';

export type IssuanceMethod = 'sds' | 'csr' | 'api' | 'cli';

export interface CertificateRecord {
  /** Hex, lower case. */
  serial: string;
  spiffeId: string;
  notBefore: number;
  notAfter: number;
  issuedAt: number;
  /** Who asked: the authenticated caller (SPIFFE ID, or an API principal). */
  requestedBy: string;
  method: IssuanceMethod;
  caSlot: string;
}

export interface CertificateQuery {
  spiffeId?: string;
  namespace?: string;
  serviceAccount?: string;
  serial?: string;
  /** Only certificates valid at this instant (ms). */
  validAt?: number;
  issuedAfter?: number;
  issuedBefore?: number;
  limit: number;
  cursor?: string;
}

interface Row {
  serial: string; spiffe_id: string; not_before: number; not_after: number; issued_at: number; requested_by: string; method: IssuanceMethod; ca_slot: string;
}

const NS_SA = /\/ns\/([^/]+)\/sa\/([^/]+)$/;
const NO_NS_SA: readonly [null, null] = [null, null];
/** Namespace and service account of recently recorded SPIFFE IDs (a fleet renews the same ones). */
const nsSaOf = boundedMemo(10_000, (spiffeId: string): readonly [string | null, string | null] => {
  const m = NS_SA.exec(spiffeId);
  return m ? [m[1]!, m[2]!] : NO_NS_SA;
});

export function encodeCursor(issuedAt: number, serial: string): string {
  return Buffer.from(JSON.stringify([issuedAt, serial])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    return Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string' ? [v[0], v[1]] : undefined;
  } catch {
    return undefined;
  }
}

export interface CertificateRecordPage {
  records: CertificateRecord[];
  nextCursor?: string;
}

/** One batch's commit: every `add` of the batch gets the same promise. */
export class BatchCommit {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Callers may ignore the promise (fire-and-forget issuance): no unhandled rejection then.
    this.promise.catch(() => undefined);
  }
}

/** Where issued certificates are recorded: SQLite in the data dir, or PostgreSQL shared by replicas (records-postgres.ts). */
export interface CertificateRecordStore {
  /**
   * Queues the record; resolves once it is durable (its batch committed), rejects if that batch
   * could not be written. Ignoring the promise is allowed: a rejection then goes unnoticed here.
   */
  add(record: CertificateRecord): Promise<void>;
  list(q: CertificateQuery): CertificateRecordPage | Promise<CertificateRecordPage>;
  close(): void | Promise<void>;
}

export class CertificateRecords implements CertificateRecordStore {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  /** One batch in one transaction; built once (better-sqlite3 builds wrappers per `transaction()`). */
  readonly #insertBatch: (batch: CertificateRecord[]) => void;
  #pending: CertificateRecord[] = [];
  #commit: BatchCommit | undefined;
  #flushScheduled = false;

  constructor(file: string) {
    // 0600 before SQLite opens it, and never by a descriptor of an open database (sqlite-file.ts).
    preparePrivateDatabaseFile(file);
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS certificates (
      serial TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, namespace TEXT, service_account TEXT,
      not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, issued_at INTEGER NOT NULL,
      requested_by TEXT NOT NULL, method TEXT NOT NULL, ca_slot TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS certificates_issued ON certificates (issued_at DESC, serial DESC);
      CREATE INDEX IF NOT EXISTS certificates_spiffe ON certificates (spiffe_id, issued_at DESC);`);
    this.#insert = this.#db.prepare('INSERT OR IGNORE INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.#insertBatch = this.#db.transaction((batch: CertificateRecord[]) => {
      for (const r of batch) {
        const [namespace, serviceAccount] = nsSaOf(r.spiffeId);
        this.#insert.run(r.serial, r.spiffeId, namespace, serviceAccount, r.notBefore, r.notAfter, r.issuedAt, r.requestedBy, r.method, r.caSlot);
      }
    });
  }

  add(record: CertificateRecord): Promise<void> {
    this.#pending.push(record);
    const commit = this.#commit ??= new BatchCommit();
    if (this.#pending.length >= 512) this.#flushQuietly();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flushQuietly());
    }
    return commit.promise;
  }

  /** From a timer: the failure is the batch's callers' to see (their `add` rejects), not a crash. */
  #flushQuietly(): void {
    try {
      this.flush();
    } catch {
      // Reported through the batch's promise.
    }
  }

  /** Commits what is queued; throws (and rejects the batch's `add`s) if the transaction fails. */
  flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    const commit = this.#commit;
    this.#pending = [];
    this.#commit = undefined;
    if (batch.length === 0) return;
    try {
      if (!this.#db.open) throw new Error('the issued-certificate database is closed');
      this.#insertBatch(batch);
    } catch (err) {
      commit?.reject(err);
      throw err;
    }
    commit?.resolve();
  }

  list(q: CertificateQuery): { records: CertificateRecord[]; nextCursor?: string } {
    this.flush();
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    const add = (sql: string, name: string, v: string | number | undefined) => {
      if (v === undefined) return;
      where.push(sql);
      params[name] = v;
    };
    add('spiffe_id = @spiffeId', 'spiffeId', q.spiffeId);
    add('namespace = @namespace', 'namespace', q.namespace);
    add('service_account = @serviceAccount', 'serviceAccount', q.serviceAccount);
    add('serial = @serial', 'serial', q.serial?.toLowerCase());
    if (q.validAt !== undefined) {
      where.push('not_before <= @validAt AND not_after > @validAt');
      params.validAt = q.validAt;
    }
    add('issued_at >= @issuedAfter', 'issuedAfter', q.issuedAfter);
    add('issued_at < @issuedBefore', 'issuedBefore', q.issuedBefore);
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined;
    if (cursor) {
      where.push('(issued_at < @cIssued OR (issued_at = @cIssued AND serial < @cSerial))');
      params.cIssued = cursor[0];
      params.cSerial = cursor[1];
    }
    const sql = `SELECT serial, spiffe_id, not_before, not_after, issued_at, requested_by, method, ca_slot FROM certificates
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial DESC LIMIT @limit`;
    const rows = this.#db.prepare(sql).all({ ...params, limit: q.limit + 1 }) as Row[];
    const records = rows.slice(0, q.limit).map((r) => ({
      serial: r.serial, spiffeId: r.spiffe_id, notBefore: r.not_before, notAfter: r.not_after, issuedAt: r.issued_at,
      requestedBy: r.requested_by, method: r.method, caSlot: r.ca_slot,
    }));
    const last = records.at(-1);
    return rows.length > q.limit && last ? { records, nextCursor: encodeCursor(last.issuedAt, last.serial) } : { records };
  }

  close(): void {
    this.flush();
    if (this.#db.open) this.#db.close();
  }
}
