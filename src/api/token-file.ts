/**
 * API tokens kept in the data directory: `<data>/api-tokens.json` (name, role, SHA-256, created,
 * expires; mode 0600) is written by `meshward token` and by the first start, always whole and
 * renamed into place so a watching server never reads half a file. When each token was last used
 * is written by the server alone, batched, to `<data>/api-tokens.last-used.json`: the CLI and the
 * server never write the same file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MeshwardError } from '../lib/errors.ts';

export type ApiRole = 'admin' | 'auditor' | 'operator';

export const API_ROLES: readonly ApiRole[] = ['admin', 'operator', 'auditor'];

export interface StoredToken {
  name: string;
  role: ApiRole;
  /** Hex SHA-256 of the token: the token itself is never stored. */
  sha256: string;
  /** Epoch ms (absent on tokens written before these fields existed). */
  createdAt?: number;
  /** Epoch ms after which the token is refused; absent: never expires. */
  expiresAt?: number;
}

export const API_TOKENS_FILE = 'api-tokens.json';
export const LAST_USED_FILE = 'api-tokens.last-used.json';

export const tokenFileOf = (dataDir: string): string => path.join(dataDir, API_TOKENS_FILE);

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new random 256-bit token and its hash. */
export function newTokenSecret(): { token: string; sha256: string } {
  const token = `mw_${randomBytes(32).toString('base64url')}`;
  return { token, sha256: hashToken(token) };
}

export function isExpired(t: StoredToken, now: number): boolean {
  return t.expiresAt !== undefined && t.expiresAt <= now;
}

function checkToken(t: unknown, file: string, i: number): StoredToken {
  const x = t as Partial<StoredToken> | null;
  const ok = x !== null && typeof x === 'object' && typeof x.name === 'string' && API_ROLES.includes(x.role as ApiRole)
    && typeof x.sha256 === 'string' && /^[0-9a-f]{64}$/.test(x.sha256)
    && (x.createdAt === undefined || typeof x.createdAt === 'number') && (x.expiresAt === undefined || typeof x.expiresAt === 'number');
  if (!ok) throw new MeshwardError('INVALID_ARGUMENT', `${file}: entry ${i} is not a token (name, role admin|operator|auditor, sha256 as 64 hex digits)`);
  return x as StoredToken;
}

/** The tokens in `file` ([] when it does not exist). A malformed file is an error naming it. */
export function readTokenFile(file: string): StoredToken[] {
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new MeshwardError('INVALID_ARGUMENT', `${file}: not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new MeshwardError('INVALID_ARGUMENT', `${file}: expected a JSON array of tokens`);
  return parsed.map((t, i) => checkToken(t, file, i));
}

/** Writes `value` as JSON to `file` (0600) through a temporary file and a rename. */
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

export function writeTokenFile(file: string, tokens: readonly StoredToken[]): void {
  writeJsonAtomic(file, tokens);
}

/** sha256 → epoch ms of the last accepted request, as the server last wrote it. */
export function readLastUsed(dataDir: string): Record<string, number> {
  try {
    const parsed = JSON.parse(readFileSync(path.join(dataDir, LAST_USED_FILE), 'utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, number>) : {};
  } catch {
    return {};
  }
}

/** Merges `used` into the last-used file, keeping the later time of each token. */
export function mergeLastUsed(dataDir: string, used: ReadonlyMap<string, number>): void {
  const all = readLastUsed(dataDir);
  for (const [sha, at] of used) all[sha] = Math.max(all[sha] ?? 0, at);
  writeJsonAtomic(path.join(dataDir, LAST_USED_FILE), all);
}
