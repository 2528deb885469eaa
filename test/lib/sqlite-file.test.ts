import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { preparePrivateDatabaseFile } from '../../src/lib/sqlite-file.ts';
import { posixLocksOf } from '../helpers/sqlite-writer.ts';

describe('preparePrivateDatabaseFile', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-sqlite-file-'));
    dirs.push(d);
    return d;
  };

  it('creates the database file 0600 in a 0700 folder, and SQLite gives -wal and -shm the same mode', () => {
    const file = path.join(tmp(), 'sub', 'x.db');
    preparePrivateDatabaseFile(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (x)');
    for (const suffix of ['-wal', '-shm']) expect(fs.statSync(file + suffix).mode & 0o777).toBe(0o600);
    db.close();
  });

  it('makes an existing database and its -wal/-shm private again', () => {
    const file = path.join(tmp(), 'x.db');
    for (const suffix of ['', '-wal', '-shm']) fs.writeFileSync(file + suffix, '', { mode: 0o644 });
    preparePrivateDatabaseFile(file);
    for (const suffix of ['', '-wal', '-shm']) expect(fs.statSync(file + suffix).mode & 0o777).toBe(0o600);
  });

  it('keeps the POSIX locks this process holds on an open database (a closed descriptor would drop them)', () => {
    const file = path.join(tmp(), 'x.db');
    preparePrivateDatabaseFile(file);
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
      expect(posixLocksOf(process.pid, file).length).toBeGreaterThan(0);
      preparePrivateDatabaseFile(file);
      expect(posixLocksOf(process.pid, file).length).toBeGreaterThan(0);
      // What the old code did, for contrast: the locks are gone.
      fs.closeSync(fs.openSync(file, 'a', 0o600));
      expect(posixLocksOf(process.pid, file)).toEqual([]);
    } finally {
      db.close();
    }
  });
});
