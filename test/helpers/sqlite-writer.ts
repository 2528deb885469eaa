/**
 * Drives sqlite-writer-child.ts from a test, and plays the operator's second client: a
 * better-sqlite3 connection of this process and the `sqlite3` shell (when installed), both
 * opening the database while the child writes, then closing (which is when SQLite checkpoints
 * and deletes the -wal/-shm files if it believes no other connection holds the database).
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sqlite-writer-child.ts');

export type WriterKind = 'audit' | 'audit-in-thread' | 'certificates' | 'quotas';

export interface WriterChild {
  pid: number;
  /** Writes `count` more records; resolves with the total once the child says they are committed. */
  write(count: number): Promise<number>;
  /** SIGKILL: no close, no checkpoint, nothing flushed by the process. */
  kill(): Promise<void>;
}

export async function startWriterChild(kind: WriterKind, target: string): Promise<WriterChild> {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', CHILD, kind, target], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve(m: RegExpExecArray): void; reject(e: Error): void }[] = [];
  const settle = () => {
    for (const w of [...waiters]) {
      const m = w.re.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        out = out.slice(m.index + m[0].length);
        w.resolve(m);
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); settle(); });
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
  const exited = new Promise<void>((resolve) => child.on('exit', () => {
    for (const w of waiters.splice(0)) w.reject(new Error(`writer child exited: ${err}`));
    resolve();
  }));
  const next = (re: RegExp) => new Promise<RegExpExecArray>((resolve, reject) => { waiters.push({ re, resolve, reject }); settle(); });
  await next(/ready\n/);
  return {
    pid: child.pid!,
    async write(count) {
      child.stdin.write(`write ${count}\n`);
      return Number((await next(/written (\d+)\n/))[1]);
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The POSIX (fcntl) locks `pid` holds on `file`, from /proc/locks (Linux). */
export function posixLocksOf(pid: number, file: string): string[] {
  const { ino } = fs.statSync(file);
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').filter((line) => {
    const f = line.trim().split(/\s+/);
    // `1: POSIX  ADVISORY  WRITE 3826 fe:00:1474578 0 EOF`
    return f[1] === 'POSIX' && f[4] === String(pid) && f[5]?.split(':')[2] === String(ino);
  });
}

export function sqlite3ShellAvailable(): boolean {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Counts the rows of `table` as a second client would, and closes: a better-sqlite3 connection
 * (read-write, as an operator's script opens it) and the sqlite3 shell if installed. Returns the counts.
 */
export function readAsSecondClients(file: string, table: string): number[] {
  const counts: number[] = [];
  const db = new Database(file);
  counts.push((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
  db.close();
  if (sqlite3ShellAvailable()) counts.push(Number(execFileSync('sqlite3', [file, `select count(*) from ${table}`], { encoding: 'utf8' }).trim()));
  return counts;
}

/**
 * The scenario the three stores share: a child commits 200 records, a second client reads and
 * closes, the child commits 300 more and keeps its POSIX locks throughout, then dies by SIGKILL.
 * Returns once the child is dead; the caller checks what survived.
 */
export async function writeReadAndKill(kind: WriterKind, file: string, table: string): Promise<void> {
  const writer = await startWriterChild(kind, file);
  try {
    if ((await writer.write(200)) !== 200) throw new Error('the writer did not commit 200 records');
    if (posixLocksOf(writer.pid, file).length === 0) throw new Error('the writer holds no POSIX lock on the database');
    for (const count of readAsSecondClients(file, table)) if (count !== 200) throw new Error(`a second client read ${count} records, not 200`);
    if ((await writer.write(300)) !== 500) throw new Error('the writer did not commit 500 records');
    if (posixLocksOf(writer.pid, file).length === 0) throw new Error('the writer lost its POSIX lock after the second client closed');
  } finally {
    await writer.kill();
  }
}

/** Mode bits of the database and the -wal/-shm files that exist. */
export function databaseFileModes(file: string): number[] {
  return ['', '-wal', '-shm'].filter((s) => fs.existsSync(file + s)).map((s) => fs.statSync(file + s).mode & 0o777);
}
