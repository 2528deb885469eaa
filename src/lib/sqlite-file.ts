/**
 * Makes a SQLite database file private (0600) without ever closing a descriptor of an existing
 * database. POSIX locks belong to the process: closing ANY descriptor of a file drops every lock
 * the process holds on it, including those of open SQLite connections (SQLite, "How To Corrupt
 * An SQLite Database File" §2.2.1). A second client (the sqlite3 shell) then believes it is the
 * last connection, checkpoints and deletes the -wal under the running writer, and the records
 * committed after that are lost at the next crash. So: create the file with O_EXCL (a new inode
 * nobody has open, so closing that descriptor drops nothing), and fix an existing file's mode by
 * path (chmod opens nothing). SQLite creates -wal and -shm with the database file's mode.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';

const COMPANIONS = ['', '-wal', '-shm', '-journal'];

/** Creates `file` 0600 (its folder 0700) if missing; makes it and its -wal/-shm/-journal 0600 if present. */
export function preparePrivateDatabaseFile(file: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(file, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (const suffix of COMPANIONS) {
    try {
      chmodSync(file + suffix, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
