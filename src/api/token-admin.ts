/**
 * Creating, listing and revoking API tokens where a server reads them (`meshward token`): the
 * data directory's api-tokens.json, or with a database URL the store replicas share. A running
 * server picks the change up within about a second either way (auth.ts, shared-tokens.ts).
 */
import { closeSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';
import type { SharedStateStore } from '../state/index.ts';
import { type ApiRole, hashToken, newTokenSecret, readLastUsed, readTokenFile, type StoredToken, tokenFileOf, writeTokenFile } from './token-file.ts';

registerErrorCodes({
  API_TOKEN_EXISTS: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, exit: 73, description: 'An API token with this name exists already (revoke it first, or pick another name).' },
});

export interface TokenRecord extends StoredToken {
  /** Epoch ms of the last accepted request, as last written by a server (batched). */
  lastUsedAt?: number;
}

export interface TokenAdmin {
  /** Where the tokens live, for messages. */
  readonly location: string;
  list(): Promise<TokenRecord[]>;
  add(token: StoredToken): Promise<void>;
  /** Removes the tokens named `name`; how many. */
  remove(name: string): Promise<number>;
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Creates a token: checks the name is new, stores its hash; returns the secret (print it once). */
export async function createApiToken(admin: TokenAdmin, o: { name: string; role: ApiRole; ttlMs?: number; now: number }): Promise<{ token: string; record: StoredToken }> {
  if (!NAME.test(o.name)) throw new MeshwardError('INVALID_ARGUMENT', `--name "${o.name}": use 1-64 letters, digits, '.', '_' or '-'`);
  if ((await admin.list()).some((t) => t.name === o.name)) throw new MeshwardError('API_TOKEN_EXISTS', `a token named "${o.name}" exists in ${admin.location}: revoke it first, or pick another name`);
  const { token, sha256 } = newTokenSecret();
  const record: StoredToken = { name: o.name, role: o.role, sha256, createdAt: o.now, ...(o.ttlMs ? { expiresAt: o.now + o.ttlMs } : {}) };
  await admin.add(record);
  return { token, record };
}

/** Revokes every token named `name`; NOT_FOUND when there is none. */
export async function revokeApiToken(admin: TokenAdmin, name: string): Promise<number> {
  const n = await admin.remove(name);
  if (n === 0) throw new MeshwardError('NOT_FOUND', `no token named "${name}" in ${admin.location}`);
  return n;
}

/** The tokens in `<dataDir>/api-tokens.json`; edits hold `api-tokens.json.lock` so two CLIs do not lose each other's change. */
export function fileTokenAdmin(dataDir: string): TokenAdmin {
  const file = tokenFileOf(dataDir);
  return {
    location: file,
    async list() {
      const used = readLastUsed(dataDir);
      return readTokenFile(file).map((t) => (used[t.sha256] ? { ...t, lastUsedAt: used[t.sha256] } : t));
    },
    async add(token) {
      withFileLock(file, () => {
        const tokens = readTokenFile(file);
        if (tokens.some((t) => t.name === token.name)) throw new MeshwardError('API_TOKEN_EXISTS', `a token named "${token.name}" exists in ${file}`);
        writeTokenFile(file, [...tokens, token]);
      });
    },
    async remove(name) {
      return withFileLock(file, () => {
        const tokens = readTokenFile(file);
        const removed = tokens.filter((t) => t.name === name);
        if (removed.length > 0) writeTokenFile(file, tokens.filter((t) => t.name !== name));
        forgetAdminTokenFile(dataDir, removed);
        return removed.length;
      });
    },
    async close() {},
  };
}

/** The tokens replicas share (PostgreSQL). */
export function sharedTokenAdmin(store: SharedStateStore, dataDir: string): TokenAdmin {
  return {
    location: `${store.location} (shared by replicas)`,
    list: () => store.listApiTokens(),
    add: (token) => store.addApiToken(token),
    async remove(name) {
      const removed = (await store.listApiTokens()).filter((t) => t.name === name);
      const n = await store.removeApiToken(name);
      forgetAdminTokenFile(dataDir, removed);
      return n;
    },
    close: () => store.close(),
  };
}

/** `<data>/admin.token` holding a revoked token would only mislead the CLI: it goes too. */
function forgetAdminTokenFile(dataDir: string, removed: readonly StoredToken[]): void {
  const file = path.join(dataDir, 'admin.token');
  try {
    const hash = hashToken(readFileSync(file, 'utf8').trim());
    if (removed.some((t) => t.sha256 === hash)) rmSync(file, { force: true });
  } catch {
    // no admin.token here
  }
}

const LOCK_WAIT_MS = 5000;
const LOCK_STALE_MS = 30_000;

function withFileLock<T>(file: string, fn: () => T): T {
  const lock = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() - mtimeOf(lock) > LOCK_STALE_MS) rmSync(lock, { force: true }); // left by a killed CLI
      else if (Date.now() > deadline) throw new MeshwardError('UNAVAILABLE', `${lock} is held by another meshward token command; retry, or remove it if none runs`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function mtimeOf(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
}
