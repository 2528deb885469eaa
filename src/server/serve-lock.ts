/**
 * `<data>/serve.lock`: which process serves from a data directory, and where. `meshward serve`
 * writes it before it opens anything (pid, host) and again once bound (its addresses); it removes
 * it on stop (empties it when the data dir itself is read-only). Commands that would change the
 * data directory offline (`ca rotate --offline`) refuse while a live server holds it, and commands
 * that talk to a server find its address here.
 *
 * A lock whose process is gone is stale (a killed server): it is ignored and replaced. Liveness is
 * the pid on this host (signal 0). A lock written on another host (a shared volume) cannot be
 * checked: offline commands take it as live (and refuse), while serve takes it over with a
 * warning, since a pod killed on another node (SIGKILL, node loss) must not keep its successor
 * from starting.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  DATA_DIR_IN_USE: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409, exit: 75, description: 'A running meshward server holds the data directory (<data>/serve.lock): change it through that server, or stop it first.' },
});

export const SERVE_LOCK_FILE = 'serve.lock';

export interface ServeLockInfo {
  pid: number;
  host: string;
  startedAt: string;
  /** Bound addresses, once listening. */
  grpc?: string;
  http?: string;
  /** The HTTP API is served over TLS (https://). */
  httpTls?: boolean;
  /** API tokens (and the CA) live in the shared PostgreSQL store, not in this data dir. */
  sharedState?: boolean;
}

export class DataDirInUseError extends MeshwardError {
  readonly lock: ServeLockInfo;

  constructor(message: string, lock: ServeLockInfo) {
    super('DATA_DIR_IN_USE', message);
    this.lock = lock;
  }
}

export const serveLockFile = (dataDir: string): string => path.join(dataDir, SERVE_LOCK_FILE);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

/** Whether the process that wrote the lock still runs (always assumed for another host's lock). */
export function lockIsLive(lock: ServeLockInfo): boolean {
  return lock.host !== hostname() || pidAlive(lock.pid);
}

/** The lock in `dataDir`, if any (an unreadable or malformed file counts as none). */
export function readServeLock(dataDir: string): ServeLockInfo | undefined {
  try {
    const lock = JSON.parse(readFileSync(serveLockFile(dataDir), 'utf8')) as ServeLockInfo;
    return Number.isInteger(lock.pid) && typeof lock.host === 'string' ? lock : undefined;
  } catch {
    return undefined;
  }
}

/** The lock of a live server holding `dataDir`, or undefined (none, or stale). */
export function liveServeLock(dataDir: string): ServeLockInfo | undefined {
  const lock = readServeLock(dataDir);
  return lock && lockIsLive(lock) ? lock : undefined;
}

export function describeLock(lock: ServeLockInfo): string {
  const where = lock.http ? ` (HTTP API ${lock.http}${lock.grpc ? `, gRPC ${lock.grpc}` : ''})` : '';
  return `pid ${lock.pid} on ${lock.host}${where}, since ${lock.startedAt}`;
}

/** Refuses an offline change of `dataDir` while a live server holds it. */
export function assertNoLiveServer(dataDir: string, what: string): void {
  const lock = liveServeLock(dataDir);
  if (lock) {
    throw new DataDirInUseError(`${what}: a running server holds ${dataDir} (${describeLock(lock)}); ask that server (without --offline), or stop it first`, lock);
  }
}

/** The data dir itself is read-only (only a pre-created serve.lock is writable, see docs/replicas.md). */
const readOnlyDir = (err: unknown) => ['EACCES', 'EPERM', 'EROFS'].includes((err as NodeJS.ErrnoException).code ?? '');

function write(dataDir: string, lock: ServeLockInfo): void {
  const text = `${JSON.stringify(lock)}\n`;
  // Written whole then renamed: a reader never sees half a lock. In a read-only data dir no
  // temporary file can be created: the lock file is rewritten in place (one small write; a reader
  // that catches it half-written takes it as no lock, as for any malformed one).
  const tmp = `${serveLockFile(dataDir)}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
  } catch (err) {
    if (!readOnlyDir(err)) throw err;
    writeFileSync(serveLockFile(dataDir), text);
    return;
  }
  renameSync(tmp, serveLockFile(dataDir));
}

/** Removes the lock; in a read-only data dir it is emptied instead (an empty lock is no lock). */
function remove(dataDir: string): void {
  try {
    rmSync(serveLockFile(dataDir), { force: true });
  } catch (err) {
    if (!readOnlyDir(err)) throw err;
    writeFileSync(serveLockFile(dataDir), '');
  }
}

export interface ServeLock {
  /** A lock written on another host that this one replaced (serve logs it). */
  readonly replaced?: ServeLockInfo;
  /** Records the bound addresses. */
  update(addresses: { grpc: string; http: string; httpTls?: boolean; sharedState?: boolean }): void;
  /** Removes the lock if it is still this process's. */
  release(): void;
}

/**
 * Takes `dataDir` for this process: refuses (DATA_DIR_IN_USE) while another live server on this
 * host holds it; replaces a stale lock, or one from another host (reported as `replaced`).
 */
export function acquireServeLock(dataDir: string): ServeLock {
  const held = readServeLock(dataDir);
  const here = held?.host === hostname();
  if (held && here && held.pid !== process.pid && pidAlive(held.pid)) {
    throw new DataDirInUseError(`another meshward server holds ${dataDir} (${describeLock(held)}); give each server its own --data directory`, held);
  }
  const replaced = held && !here ? held : undefined;
  let lock: ServeLockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  write(dataDir, lock);
  const ours = () => {
    const now = readServeLock(dataDir);
    return now?.pid === process.pid && now.host === lock.host;
  };
  return {
    ...(replaced ? { replaced } : {}),
    update(addresses) {
      lock = { ...lock, grpc: addresses.grpc, http: addresses.http, ...(addresses.httpTls ? { httpTls: true } : {}), ...(addresses.sharedState ? { sharedState: true } : {}) };
      if (ours()) write(dataDir, lock);
    },
    release() {
      if (ours()) remove(dataDir);
    },
  };
}
