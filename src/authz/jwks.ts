/**
 * JWKS for RequestAuthentication: inline key sets, and `jwksUri` key sets fetched, cached and
 * refreshed on a timer. A failed refresh keeps the last good keys (and retries sooner); an unknown
 * `kid` triggers one early refresh, at most once per cooldown, so key rotation at the issuer is
 * picked up without waiting for the timer. Caches outlive config snapshots (keyed by URI).
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, type Registry } from '../lib/metrics.ts';
import { JwksFetchError } from './errors.ts';

const MAX_JWKS_BYTES = 1024 * 1024;

export interface KeySource {
  /** Changes whenever the key material changes (verified-token caches key on it). */
  readonly generation: number;
  /** Key lookup for jose's jwtVerify; throws JWKSNoMatchingKey for an unknown kid. */
  readonly getKey: JWTVerifyGetKey;
  /** Resolves once keys are loaded (or the first fetch failed). */
  ready(): Promise<void>;
  /** True when there are keys to verify with. */
  hasKeys(): boolean;
  /** Asks for an early refresh after an unknown kid; resolves true if new keys were loaded. */
  refreshForUnknownKey(): Promise<boolean>;
}

export function parseJwks(text: string, where: string): JSONWebKeySet {
  const parsed = JSON.parse(text) as { keys?: unknown };
  if (!parsed || !Array.isArray(parsed.keys)) throw new Error(`${where}: not a JSON Web Key Set (no "keys" array)`);
  return parsed as JSONWebKeySet;
}

/** An inline `jwks`: parsed once, never changes. */
export function inlineKeySource(jwks: string): KeySource {
  const getKey = createLocalJWKSet(parseJwks(jwks, 'inline jwks'));
  return { generation: 0, getKey, ready: async () => {}, hasKeys: () => true, refreshForUnknownKey: async () => false };
}

export interface JwksCacheOptions {
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Refresh period of fetched key sets (Istio's default is 20 minutes). */
  refreshMs?: number;
  /** Retry period after a failed fetch. */
  retryMs?: number;
  /** Minimum time between refreshes caused by unknown kids. */
  cooldownMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

class RemoteKeySource implements KeySource {
  generation = 0;
  #getKey?: JWTVerifyGetKey;
  #body = '';
  #inflight?: Promise<boolean>;
  #lastFetch = Number.NEGATIVE_INFINITY;
  #cancelTimer?: () => void;
  #closed = false;
  readonly #uri: string;
  readonly #cache: JwksCache;

  constructor(uri: string, cache: JwksCache) {
    this.#uri = uri;
    this.#cache = cache;
  }

  readonly getKey: JWTVerifyGetKey = (header, token) => {
    if (!this.#getKey) throw new JwksFetchError(this.#uri, new Error('no keys loaded yet'));
    return this.#getKey(header, token);
  };

  hasKeys(): boolean {
    return this.#getKey !== undefined;
  }

  async ready(): Promise<void> {
    if (this.#getKey) return;
    if (this.#inflight) {
      await this.#inflight;
      return;
    }
    // No keys yet: fetch, but never once per request while the issuer is down (the retry timer runs).
    if (this.#cache.options.clock.now() - this.#lastFetch >= this.#cache.cooldownMs) await this.refresh();
  }

  async refreshForUnknownKey(): Promise<boolean> {
    if (this.#inflight) return this.#inflight;
    if (this.#cache.options.clock.now() - this.#lastFetch < this.#cache.cooldownMs) return false;
    return this.refresh();
  }

  /** Fetches now; resolves true when the key material changed. Never rejects: failures are logged. */
  refresh(): Promise<boolean> {
    this.#inflight ??= this.#fetch().finally(() => { this.#inflight = undefined; });
    return this.#inflight;
  }

  async #fetch(): Promise<boolean> {
    const { clock, logger } = this.#cache.options;
    this.#lastFetch = clock.now();
    let next = this.#cache.refreshMs;
    try {
      const res = await this.#cache.fetchImpl(this.#uri, { signal: AbortSignal.timeout(this.#cache.timeoutMs), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.text();
      // A key set is a few KiB; refuse to hold (and re-parse every refresh) something far larger.
      if (body.length > MAX_JWKS_BYTES) throw new Error(`the key set is larger than ${MAX_JWKS_BYTES} bytes`);
      const jwks = parseJwks(body, this.#uri);
      this.#cache.fetches.inc({ result: 'ok' });
      if (body === this.#body) return false;
      this.#body = body;
      this.#getKey = createLocalJWKSet(jwks);
      this.generation++;
      logger.info({ jwksUri: this.#uri, keys: jwks.keys.length }, 'JWKS loaded');
      return true;
    } catch (err) {
      next = this.#cache.retryMs;
      this.#cache.fetches.inc({ result: 'error' });
      const e = new JwksFetchError(this.#uri, err);
      logger.warn({ err: { code: e.code, message: e.message }, keptPreviousKeys: this.hasKeys() }, 'JWKS fetch failed');
      return false;
    } finally {
      this.#schedule(next);
    }
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#cancelTimer?.();
    this.#cancelTimer = this.#cache.options.clock.setTimer(delayMs, () => { void this.refresh(); });
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer?.();
  }
}

/** The fetched key sets of every RequestAuthentication, by URI. */
export class JwksCache {
  readonly options: JwksCacheOptions;
  readonly refreshMs: number;
  readonly retryMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
  readonly fetchImpl: typeof fetch;
  readonly fetches;
  readonly #sources = new Map<string, RemoteKeySource>();

  constructor(options: JwksCacheOptions) {
    this.options = options;
    this.refreshMs = options.refreshMs ?? 5 * 60_000;
    this.retryMs = options.retryMs ?? 30_000;
    this.cooldownMs = options.cooldownMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.fetchImpl = options.fetch ?? fetch;
    this.fetches = counter(options.registry, 'meshward_jwks_fetches_total', 'JWKS fetches by result.', ['result']);
  }

  /** The key source for a URI, created (and its first fetch started) on first use. */
  source(uri: string): KeySource {
    let s = this.#sources.get(uri);
    if (!s) {
      s = new RemoteKeySource(uri, this);
      this.#sources.set(uri, s);
      void s.refresh();
    }
    return s;
  }

  /** Forgets URIs no longer referenced by the configuration. */
  retain(uris: ReadonlySet<string>): void {
    for (const [uri, s] of this.#sources) {
      if (!uris.has(uri)) {
        s.close();
        this.#sources.delete(uri);
      }
    }
  }

  close(): void {
    for (const s of this.#sources.values()) s.close();
    this.#sources.clear();
  }
}
