/**
 * Bearer-token authentication for the HTTP API. Tokens are random 256-bit secrets; only their
 * SHA-256 is stored (`<data>/api-tokens.json`, 0600, see token-file.ts). An admin token is created
 * on first start (`<data>/admin.token`, 0600) so a fresh install is usable and never open.
 * `meshward token create|revoke` edits the file; a running server re-reads it when it changes
 * (polled every second), so tokens apply without a restart. Expired tokens are refused; when each
 * token was last used is kept in memory and written in batches (LAST_USED_FLUSH_MS).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type Stats, mkdirSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MeshwardError } from '../lib/errors.ts';
import { type ApiRole, isExpired, mergeLastUsed, newTokenSecret, readTokenFile, type StoredToken, tokenFileOf, writeTokenFile } from './token-file.ts';

export type { ApiRole, StoredToken } from './token-file.ts';

export interface ApiPrincipal {
  name: string;
  role: ApiRole;
}

/** How often a server looks at api-tokens.json, and writes last-used times. */
export const TOKEN_FILE_POLL_MS = 1000;
export const LAST_USED_FLUSH_MS = 30_000;

/** Which roles may do what: admin may do everything. */
const ROLE_GRANTS: Record<ApiRole, ReadonlySet<ApiRole>> = {
  admin: new Set(['admin', 'auditor', 'operator']),
  auditor: new Set(['auditor']),
  operator: new Set(['operator']),
};

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class ApiAuth {
  #tokens: StoredToken[];
  readonly #file: string | undefined;
  /** Extra verifiers (e.g. client certificates with an auditor SPIFFE ID), tried after tokens. */
  #extra: ((req: FastifyRequest) => ApiPrincipal | undefined)[] = [];
  /** Tokens from a store shared by replicas (shared-tokens.ts), replaced on every refresh. */
  #shared: StoredToken[] = [];
  /** Persists a created token to the shared store (instead of the file). */
  #persistShared?: (token: StoredToken) => void;
  /** sha256 → last time a request carrying it was accepted, not yet written. */
  #used = new Map<string, number>();
  #closers: (() => void)[] = [];
  /** The MESHWARD_ADMIN_TOKEN entry: never in the file, kept across reloads. */
  #envAdmin: StoredToken[] = [];

  constructor(tokens: StoredToken[] = [], file?: string) {
    this.#tokens = tokens;
    this.#file = file;
  }

  /**
   * Loads `<dataDir>/api-tokens.json`, creating it and an admin token on first use; with `watch`,
   * re-reads it when it changes and writes last-used times to the data dir (stop with close()).
   */
  static fromDataDir(dataDir: string, o: { watch?: boolean; onReloadError?: (err: unknown) => void } = {}): ApiAuth {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = tokenFileOf(dataDir);
    const tokens = readTokenFile(file);
    const auth = new ApiAuth(tokens, file);
    if (!tokens.some((t) => t.role === 'admin')) {
      const token = auth.createToken('admin', 'admin');
      writeFileSync(path.join(dataDir, 'admin.token'), token + '\n', { mode: 0o600 });
    }
    const envToken = process.env.MESHWARD_ADMIN_TOKEN;
    if (envToken) auth.#envAdmin = [{ name: 'env-admin', role: 'admin', sha256: sha256(envToken).toString('hex') }];
    if (o.watch) {
      auth.#watchFile(file, o.onReloadError);
      auth.#flushUsageEvery(LAST_USED_FLUSH_MS, (used) => mergeLastUsed(dataDir, used));
    }
    return auth;
  }

  /** Re-reads the token file (revoked tokens stop working, created ones start). */
  reloadFile(): void {
    if (this.#file) this.#tokens = readTokenFile(this.#file);
  }

  #watchFile(file: string, onError: ((err: unknown) => void) | undefined): void {
    // Polling the path (not fs.watch): the file is replaced by rename, and this works on every filesystem.
    const listener = (now: Stats, before: Stats) => {
      if (now.mtimeMs === before.mtimeMs && now.ino === before.ino && now.size === before.size) return;
      try {
        this.reloadFile();
      } catch (err) {
        onError?.(err); // keep the last good list: a half-edited file must not lock everyone out
      }
    };
    watchFile(file, { interval: TOKEN_FILE_POLL_MS, persistent: false }, listener);
    this.#closers.push(() => unwatchFile(file, listener));
  }

  /** Every `ms`, hands the last-used times gathered since to `write` (and once more on close). */
  #flushUsageEvery(ms: number, write: (used: ReadonlyMap<string, number>) => void | Promise<void>): void {
    const flush = () => {
      const used = this.takeUsage();
      if (used.size > 0) void Promise.resolve().then(() => write(used)).catch(() => { /* best effort: last-used is informational */ });
    };
    const timer = setInterval(flush, ms);
    timer.unref();
    this.#closers.push(() => {
      clearInterval(timer);
      flush();
    });
  }

  /** Writes last-used times through `write` every `ms` (the shared store). */
  flushUsageTo(write: (used: ReadonlyMap<string, number>) => Promise<void>, ms = LAST_USED_FLUSH_MS): void {
    this.#flushUsageEvery(ms, write);
  }

  /** The last-used times gathered since the previous call. */
  takeUsage(): Map<string, number> {
    const used = this.#used;
    this.#used = new Map();
    return used;
  }

  /** Stops watching and writes the last-used times gathered so far. */
  close(): void {
    for (const close of this.#closers.splice(0)) close();
  }

  /** Creates a token for `role`; returns the secret (shown once, never stored). */
  createToken(name: string, role: ApiRole, o: { ttlMs?: number; now?: number } = {}): string {
    const { token, sha256: hash } = newTokenSecret();
    const createdAt = o.now ?? Date.now();
    const stored: StoredToken = { name, role, sha256: hash, createdAt, ...(o.ttlMs ? { expiresAt: createdAt + o.ttlMs } : {}) };
    this.#tokens.push(stored);
    this.#persistShared?.(stored);
    if (this.#file) writeTokenFile(this.#file, this.#tokens);
    return token;
  }

  /**
   * Keeps tokens in a store shared by replicas: `persist` saves each created token there, and
   * `replaceShared` installs the store's current list (see shared-tokens.ts).
   */
  useSharedStore(persist: (token: StoredToken) => void): void {
    this.#persistShared = persist;
  }

  replaceShared(tokens: readonly StoredToken[]): void {
    this.#shared = [...tokens];
  }

  addVerifier(verify: (req: FastifyRequest) => ApiPrincipal | undefined): void {
    this.#extra.push(verify);
  }

  /** The principal a bearer token belongs to, or undefined (unknown or expired). Constant-time comparison. */
  verifyToken(token: string): ApiPrincipal | undefined {
    const digest = sha256(token);
    let found: StoredToken | undefined;
    for (const t of this.#envAdmin) if (timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found = t;
    for (const t of this.#tokens) if (!found && timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found = t;
    for (const t of this.#shared) if (!found && timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found = t;
    if (!found) return undefined;
    const now = Date.now();
    if (isExpired(found, now)) return undefined;
    this.#used.set(found.sha256, now);
    return { name: found.name, role: found.role };
  }

  authenticate(req: FastifyRequest): ApiPrincipal | undefined {
    const header = req.headers.authorization;
    if (header?.startsWith('Bearer ')) return this.verifyToken(header.slice(7).trim());
    for (const verify of this.#extra) {
      const p = verify(req);
      if (p) return p;
    }
    return undefined;
  }

  /**
   * A fastify preHandler requiring `role` (admin always passes). 401 without credentials, 403 with
   * the wrong role. It is an authentication hook: buildApi runs it at onRequest, before the body.
   */
  require(role: ApiRole) {
    return authenticationHook(async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
      const principal = this.authenticate(req);
      if (!principal) throw unauthenticated(req);
      if (!ROLE_GRANTS[principal.role].has(role)) throw new MeshwardError('PERMISSION_DENIED', `role ${principal.role} may not do this (needs ${role})`);
      (req as FastifyRequest & { principal?: ApiPrincipal }).principal = principal;
    });
  }
}

/**
 * The 401 for a request no credential matched: a missing token and a token that is not valid
 * are told apart, so a client with a stale or mistyped token is not told to send one.
 */
export function unauthenticated(req: FastifyRequest): MeshwardError {
  const header = req.headers.authorization;
  if (header === undefined) return new MeshwardError('UNAUTHENTICATED', 'a bearer token is required (Authorization: Bearer <token>)');
  if (!/^Bearer /i.test(header)) return new MeshwardError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <token>"');
  return new MeshwardError('UNAUTHENTICATED', 'the bearer token is not valid (unknown, revoked or expired)');
}

const AUTHENTICATION_HOOK = Symbol('meshward.authenticationHook');

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * Marks a route preHandler as one that only reads the headers and the TLS peer (credentials):
 * buildApi moves it to onRequest so a request without valid credentials is refused before its
 * body is read. Hooks built on `ApiAuth.require` are marked already.
 */
export function authenticationHook<H extends Hook>(hook: H): H {
  return Object.assign(hook, { [AUTHENTICATION_HOOK]: true });
}

export function isAuthenticationHook(hook: unknown): hook is Hook {
  return typeof hook === 'function' && (hook as { [AUTHENTICATION_HOOK]?: boolean })[AUTHENTICATION_HOOK] === true;
}

/** The authenticated principal of a request that passed `require`. */
export function principalOf(req: FastifyRequest): ApiPrincipal | undefined {
  return (req as FastifyRequest & { principal?: ApiPrincipal }).principal;
}
