/**
 * Issued-certificate records in PostgreSQL (`<schema>.certificates`), shared by replicas: same
 * rows and queries as the SQLite store. Inserts are group-committed per event-loop turn into one
 * statement, and `add` resolves after it (rejects if it failed); `list` and `close` wait for what
 * is queued.
 */
import { MeshwardError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import type { Queryable } from '../state/index.ts';
import { BatchCommit, type CertificateQuery, type CertificateRecord, type CertificateRecordPage, type CertificateRecordStore, decodeCursor, encodeCursor } from './records.ts';

const NS_SA = /\/ns\/([^/]+)\/sa\/([^/]+)$/;

export class PostgresCertificateRecords implements CertificateRecordStore {
  readonly #db: Queryable;
  readonly #table: string;
  readonly #logger?: Logger;
  #pending: CertificateRecord[] = [];
  #commit: BatchCommit | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #scheduled = false;

  constructor(o: { db: Queryable; schema: string; logger?: Logger }) {
    this.#db = o.db;
    this.#table = `${o.schema}.certificates`;
    this.#logger = o.logger;
  }

  add(record: CertificateRecord): Promise<void> {
    this.#pending.push(record);
    const commit = this.#commit ??= new BatchCommit();
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.flush());
    }
    return commit.promise;
  }

  /** Writes what is queued (one INSERT per batch); a failed batch is logged, not retried. */
  flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#pending;
    const commit = this.#commit;
    this.#pending = [];
    this.#commit = undefined;
    if (batch.length === 0) return this.#flushing;
    const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
    for (const r of batch) {
      const m = NS_SA.exec(r.spiffeId);
      [r.serial, r.spiffeId, m?.[1] ?? null, m?.[2] ?? null, r.notBefore, r.notAfter, r.issuedAt, r.requestedBy, r.method, r.caSlot].forEach((v, i) => cols[i]!.push(v));
    }
    const write = () => this.#db.query(
      `INSERT INTO ${this.#table} SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::text[]) ON CONFLICT (serial) DO NOTHING`,
      cols,
    ).then(() => commit?.resolve(), (err: unknown) => {
      this.#logger?.error({ err, records: batch.length }, 'could not record issued certificates in PostgreSQL');
      commit?.reject(new MeshwardError('UNAVAILABLE', `issued-certificate records in PostgreSQL are unreachable: ${(err as Error).message}`, { cause: err }));
    });
    this.#flushing = this.#flushing.then(write);
    return this.#flushing;
  }

  async list(q: CertificateQuery): Promise<CertificateRecordPage> {
    await this.flush();
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, v: string | number | undefined) => {
      if (v === undefined) return;
      values.push(v);
      where.push(sql.replace('?', `$${values.length}`));
    };
    add('spiffe_id = ?', q.spiffeId);
    add('namespace = ?', q.namespace);
    add('service_account = ?', q.serviceAccount);
    add('serial = ?', q.serial?.toLowerCase());
    add('not_before <= ?', q.validAt);
    add('not_after > ?', q.validAt);
    add('issued_at >= ?', q.issuedAfter);
    add('issued_at < ?', q.issuedBefore);
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined;
    if (cursor) {
      values.push(cursor[0], cursor[1]);
      where.push(`(issued_at < $${values.length - 1} OR (issued_at = $${values.length - 1} AND serial < $${values.length}))`);
    }
    values.push(q.limit + 1);
    const r = await this.#db.query(`SELECT serial, spiffe_id, not_before, not_after, issued_at, requested_by, method, ca_slot FROM ${this.#table}
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC, serial DESC LIMIT $${values.length}`, values).catch((err: unknown) => {
      throw new MeshwardError('UNAVAILABLE', `issued-certificate records in PostgreSQL are unreachable: ${(err as Error).message}`, { cause: err });
    });
    const records = r.rows.slice(0, q.limit).map((row) => ({
      serial: String(row.serial), spiffeId: String(row.spiffe_id), notBefore: Number(row.not_before), notAfter: Number(row.not_after),
      issuedAt: Number(row.issued_at), requestedBy: String(row.requested_by), method: row.method as CertificateRecord['method'], caSlot: String(row.ca_slot),
    }));
    const last = records.at(-1);
    return r.rows.length > q.limit && last ? { records, nextCursor: encodeCursor(last.issuedAt, last.serial) } : { records };
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
