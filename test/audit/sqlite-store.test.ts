import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { WorkerSqliteAuditStore } from '../../src/audit/sqlite-worker-store.ts';
import { AuditLog, type AuditStore, verifyChain } from '../../src/audit/index.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { decision } from './fixtures.ts';
import { auditStoreContract, type StoreHarness } from './store.contract.ts';

async function sqliteHarness(open: (file: string) => Promise<AuditStore>): Promise<StoreHarness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
  const file = path.join(dir, 'audit', 'audit.db');
  let store = await open(file);
  const raw = () => new Database(file);
  const sub = (sql: string) => sql.replaceAll('{p}', 'audit_');
  return {
    get store() { return store; },
    async exec(sql, params = []) {
      const db = raw();
      db.prepare(sub(sql)).run(...params);
      db.close();
    },
    async rows<T>(sql: string, params: unknown[] = []) {
      const db = raw();
      const out = db.prepare(sub(sql)).all(...params) as T[];
      db.close();
      return out;
    },
    async reopen() {
      await store.close();
      store = await open(file);
      return store;
    },
    async cleanup() {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The worker store delegates reads to SqliteAuditStore and runs its append in a worker thread, so
// it gets focused tests rather than the whole contract (each spawn costs a thread boot).
describe('SQLite audit store (worker-thread writer)', () => {
  it('appends through the writer thread, reads on the calling thread, and continues the chain after reopen', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    const file = path.join(dir, 'audit.db');
    try {
      const store = await WorkerSqliteAuditStore.open({ file });
      const first = await store.append([decision(), decision()].map((r) => prepareRecord(r, [])));
      const second = await store.append([decision()].map((r) => prepareRecord(r, [])));
      expect([first, second]).toEqual([{ firstSeq: 1, lastSeq: 2 }, { firstSeq: 3, lastSeq: 3 }]);
      expect((await store.scan(0, 10)).map((r) => r.seq)).toEqual([1, 2, 3]);
      await store.close();
      const reopened = await WorkerSqliteAuditStore.open({ file });
      await reopened.append([prepareRecord(decision(), [])]);
      expect(await verifyChain(reopened)).toMatchObject({ ok: true, checked: 4 });

      // A failing write in the thread rejects that batch with AUDIT_STORE_UNAVAILABLE.
      const db = new Database(file);
      db.exec('DROP TABLE audit_records');
      db.close();
      await expect(reopened.append([prepareRecord(decision(), [])])).rejects.toMatchObject({ code: 'AUDIT_STORE_UNAVAILABLE' });
      // Once the failure is seen, the writer accepts batches again.
      await new SqliteAuditStore({ file }).close();
      expect(await reopened.append([prepareRecord(decision(), [])])).toEqual({ firstSeq: 1, lastSeq: 1 });
      await reopened.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes batches encoded off-heap from the audit log, and re-sends a failed batch until it commits', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    const file = path.join(dir, 'audit.db');
    try {
      const store = await WorkerSqliteAuditStore.open({ file });
      const log = new AuditLog({ store, clock: systemClock, registry: createRegistry(), logger: silentLogger(), settings: () => ({ maskPaths: [], recordAllows: true }), batchSize: 3 });
      const first = [decision(), decision({ path: '/ü/🚦', sourcePrincipal: undefined }), decision()];
      for (const r of first) log.append(r);
      await log.flush();
      // The writer's table disappears: the next batch fails and stays queued.
      const db = new Database(file);
      db.exec('ALTER TABLE audit_records RENAME TO audit_records_away');
      db.close();
      const second = [decision(), decision()];
      for (const r of second) log.append(r);
      await expect(log.flush()).rejects.toMatchObject({ code: 'AUDIT_STORE_UNAVAILABLE' });
      expect(log.stats()).toMatchObject({ queued: 2, written: 3 });
      const back = new Database(file);
      back.exec('ALTER TABLE audit_records_away RENAME TO audit_records');
      back.close();
      await log.flush();
      expect(log.stats()).toMatchObject({ queued: 0, written: 5 });
      const rows = await store.scan(0, 10);
      expect(rows.map((r) => r.decisionId)).toEqual([...first, ...second].map((r) => r.decisionId));
      expect(rows[1]).toMatchObject({ path: '/ü/🚦', sourcePrincipal: null });
      expect(await verifyChain(store)).toMatchObject({ ok: true, checked: 5 });
      await log.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('runs the writer thread at a lower CPU priority than the event loop', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    // The kernel's own view: field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value.
    const niceOf = (tid: number) => Number(fs.readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    try {
      const store = await WorkerSqliteAuditStore.open({ file: path.join(dir, 'audit.db'), writerNice: 7 });
      await store.whenReady();
      const writer = store.writerThread();
      expect(writer?.nice).toBe(7);
      expect(niceOf(writer!.tid)).toBe(7);
      // Only that thread: the main thread (tid = pid) keeps its priority.
      expect(niceOf(process.pid)).toBe(os.getPriority(0));
      expect(writer!.tid).not.toBe(process.pid);
      await store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite audit store', () => {
  auditStoreContract(() => sqliteHarness(async (file) => new SqliteAuditStore({ file })));

  it('creates the database private to its owner, in WAL mode', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    const file = path.join(dir, 'audit', 'audit.db');
    const store = new SqliteAuditStore({ file });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates a new database with 16 KiB pages and keeps the page size of an existing one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    try {
      const fresh = path.join(dir, 'fresh.db');
      await new SqliteAuditStore({ file: fresh }).close();
      const older = path.join(dir, 'older.db');
      const made = new Database(older);
      made.pragma('page_size = 4096');
      made.exec('CREATE TABLE t (x)');
      made.close();
      const store = new SqliteAuditStore({ file: older });
      await store.append([prepareRecord(decision(), [])]);
      await store.close();
      const pageSize = (file: string) => {
        const db = new Database(file, { readonly: true });
        try { return db.pragma('page_size', { simple: true }); } finally { db.close(); }
      };
      expect([pageSize(fresh), pageSize(older)]).toEqual([16384, 4096]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to open a missing database read-only with AUDIT_STORE_UNAVAILABLE', () => {
    expect(() => new SqliteAuditStore({ file: path.join(os.tmpdir(), 'mw-no-such-dir', 'audit.db'), readonly: true })).toThrow(expect.objectContaining({ code: 'AUDIT_STORE_UNAVAILABLE' }));
  });
});
