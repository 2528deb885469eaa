/**
 * An operator reading audit.db (sqlite3 shell, a script) while `serve` writes must not cost a
 * record: the writer process keeps its POSIX locks, so the reader's close never checkpoints and
 * deletes the -wal under it (SQLite, "How To Corrupt An SQLite Database File" §2.2.1).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { databaseFileModes, type WriterKind, writeReadAndKill } from '../helpers/sqlite-writer.ts';

describe('audit database read by a second client while meshward writes', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it.each<WriterKind>(['audit', 'audit-in-thread'])('keeps every acknowledged record after a concurrent reader and a SIGKILL (%s writer)', async (kind) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-readers-'));
    dirs.push(dir);
    const file = path.join(dir, 'audit', 'audit.db');
    await writeReadAndKill(kind, file, 'audit_records');
    const store = new SqliteAuditStore({ file });
    try {
      const report = await verifyChain(store);
      expect(report).toMatchObject({ ok: true, checked: 500 });
      for (const mode of databaseFileModes(file)) expect(mode).toBe(0o600);
    } finally {
      await store.close();
    }
  });
});
