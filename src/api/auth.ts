/**
 * Bearer-token authentication for the HTTP API. Tokens are random 256-bit secrets; only their
 * SHA-256 is stored (`<data>/api-tokens.json`, 0600). An admin token is created on first start
 * (`<data>/admin.token`, 0600) so a fresh install is usable and never open.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MeshwardError } from '../lib/errors.ts';

export type ApiRole = 'admin' | 'auditor' | 'operator';

export interface ApiPrincipal {
  name: string;
  role: ApiRole;
}

export interface StoredToken {
  name: string;
  role: ApiRole;
  sha256: string;
}

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

  constructor(tokens: StoredToken[] = [], file?: string) {
    this.#tokens = tokens;
    this.#file = file;
  }

  /** Loads `<dataDir>/api-tokens.json`, creating it and an admin token on first use. */
  static fromDataDir(dataDir: string): ApiAuth {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, 'api-tokens.json');
    const tokens = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredToken[]) : [];
    const auth = new ApiAuth(tokens, file);
    if (!tokens.some((t) => t.role === 'admin')) {
      const token = auth.createToken('admin', 'admin');
      writeFileSync(path.join(dataDir, 'admin.token'), token + '\n', { mode: 0o600 });
    }
    const envToken = process.env.MESHWARD_ADMIN_TOKEN;
    if (envToken) auth.#tokens.push({ name: 'env-admin', role: 'admin', sha256: sha256(envToken).toString('hex') });
    return auth;
  }

  /** Creates a token for `role`; returns the secret (shown once, never stored). */
  createToken(name: string, role: ApiRole): string {
    const token = `mw_${randomBytes(32).toString('base64url')}`;
    const stored: StoredToken = { name, role, sha256: sha256(token).toString('hex') };
    this.#tokens.push(stored);
    this.#persistShared?.(stored);
    if (this.#file) writeFileSync(this.#file, JSON.stringify(this.#tokens.filter((t) => t.name !== 'env-admin'), null, 2), { mode: 0o600 });
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

  /** The principal a bearer token belongs to, or undefined. Constant-time comparison. */
  verifyToken(token: string): ApiPrincipal | undefined {
    const digest = sha256(token);
    let found: StoredToken | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found = t;
    for (const t of this.#shared) if (!found && timingSafeEqual(digest, Buffer.from(t.sha256, 'hex'))) found = t;
    return found ? { name: found.name, role: found.role } : undefined;
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
