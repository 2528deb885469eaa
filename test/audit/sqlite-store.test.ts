import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { WorkerSqliteAuditStore } from '../../src/audit/sqlite-worker-store.ts';
import type { AuditStore } from '../../src/audit/index.ts';
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

describe('SQLite audit store (worker-thread writer)', () => {
  auditStoreContract(() => sqliteHarness((file) => WorkerSqliteAuditStore.open({ file })));
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

  it('refuses to open a missing database read-only with AUDIT_STORE_UNAVAILABLE', () => {
    expect(() => new SqliteAuditStore({ file: path.join(os.tmpdir(), 'mw-no-such-dir', 'audit.db'), readonly: true })).toThrow(expect.objectContaining({ code: 'AUDIT_STORE_UNAVAILABLE' }));
  });
});
