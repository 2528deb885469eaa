/**
 * API tokens shared by replicas: their SHA-256 hashes live in the shared store (PostgreSQL), a
 * token created on one replica (or by `meshward token create --database-url`) is written there
 * and every replica re-reads the list every `pollMs` (1 s), so it is accepted everywhere within
 * about a second, and a revoked one refused as fast. The first replica to start creates the admin
 * token (`<data>/admin.token` on that replica only). Last-used times are written in one batch per
 * LAST_USED_FLUSH_MS, never per request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../lib/logger.ts';
import { ApiAuth, type StoredToken } from './auth.ts';

export interface SharedTokenStore {
  listApiTokens(): Promise<StoredToken[]>;
  addApiToken(token: StoredToken): Promise<void>;
  addFirstAdminToken(token: StoredToken): Promise<boolean>;
  touchApiTokens(used: ReadonlyMap<string, number>): Promise<void>;
}

export interface SharedApiAuth {
  readonly auth: ApiAuth;
  /** Re-reads the shared list now. */
  refresh(): Promise<void>;
  /** Stops polling and writes the last-used times gathered since the last batch. */
  stop(): Promise<void>;
}

export const SHARED_TOKENS_POLL_MS = 1000;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

export async function openSharedApiAuth(o: { dataDir: string; store: SharedTokenStore; logger: Logger; env?: string; pollMs?: number; flushMs?: number }): Promise<SharedApiAuth> {
  const local: StoredToken[] = o.env ? [{ name: 'env-admin', role: 'admin', sha256: hashOf(o.env) }] : [];
  const auth = new ApiAuth(local);
  const admin = `mw_${randomBytes(32).toString('base64url')}`;
  if (await o.store.addFirstAdminToken({ name: 'admin', role: 'admin', sha256: hashOf(admin), createdAt: Date.now() })) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(o.dataDir, 'admin.token'), admin + '\n', { mode: 0o600 });
    o.logger.info({ file: path.join(o.dataDir, 'admin.token') }, 'created the shared admin API token (first replica)');
  }
  let failing = false;
  const refresh = async () => {
    try {
      auth.replaceShared(await o.store.listApiTokens());
      if (failing) o.logger.info('shared API tokens readable again');
      failing = false;
    } catch (err) {
      // Keep the last list: tokens known so far still work while PostgreSQL is away.
      if (!failing) o.logger.warn({ err }, 'cannot read the shared API tokens; keeping the last list');
      failing = true;
    }
  };
  auth.useSharedStore((token) => {
    o.store.addApiToken(token).catch((err: unknown) => o.logger.error({ err, name: token.name }, 'could not store the API token in the shared store; it works on this replica only'));
  });
  const touch = (used: ReadonlyMap<string, number>) => o.store.touchApiTokens(used).catch((err: unknown) => o.logger.warn({ err, tokens: used.size }, 'could not record when API tokens were last used'));
  auth.flushUsageTo(touch, o.flushMs);
  await refresh();
  const timer = setInterval(() => void refresh(), o.pollMs ?? SHARED_TOKENS_POLL_MS);
  timer.unref();
  return {
    auth, refresh,
    stop: async () => {
      clearInterval(timer);
      const used = auth.takeUsage();
      if (used.size > 0) await touch(used);
      auth.close();
    },
  };
}
