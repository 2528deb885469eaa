/**
 * certificates.db read by a second client (sqlite3 shell, a script) while meshward writes: the
 * writer keeps its POSIX locks and every committed record survives a SIGKILL.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseFileModes, writeReadAndKill } from '../helpers/sqlite-writer.ts';

describe('certificates.db read by a second client while meshward writes', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('keeps every committed certificate record after a concurrent reader and a SIGKILL, files 0600', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-ca-readers-'));
    dirs.push(dir);
    const file = path.join(dir, 'ca', 'certificates.db');
    await writeReadAndKill('certificates', file, 'certificates');
    expect(databaseFileModes(file)).toEqual([0o600, 0o600, 0o600]);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const db = new Database(file);
    expect((db.prepare('SELECT count(*) AS n FROM certificates').get() as { n: number }).n).toBe(500);
    db.close();
  });
});
