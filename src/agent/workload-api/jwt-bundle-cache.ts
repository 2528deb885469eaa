/**
 * The JWT bundle the Workload API validates with and streams. The source fetches it from meshward
 * on every call, so it is cached: refetched when older than `maxAgeMs`, when the source publishes
 * an update (renewal, CA rotation), and once when a token names a key the cache does not hold. A
 * failed refetch keeps the last good bundle for `retryMs` more (public keys; meshward unreachable
 * must not stop validation); only a first fetch that fails is an error.
 */
import type { JSONWebKeySet } from 'jose';
import type { AgentIdentitySource } from '../index.ts';
import { jwtSvidJwks } from './messages.ts';

export interface JwtBundle {
  trustDomain: string;
  /** The jwt-svid keys only (see jwtSvidJwks). */
  jwks: JSONWebKeySet;
  fetchedAt: number;
}

export interface JwtBundleCacheOptions {
  maxAgeMs?: number;
  /** After a failed refetch, the last good bundle is served this long before the next attempt. */
  retryMs?: number;
  /** A refetch for an unknown key waits this long after the previous fetch (a flood of bad tokens is not a flood of fetches). */
  minRefetchMs?: number;
  now?: () => number;
  onStale?: (err: unknown) => void;
}

export class JwtBundleCache {
  readonly #source: AgentIdentitySource;
  readonly #maxAgeMs: number;
  readonly #retryMs: number;
  readonly #minRefetchMs: number;
  readonly #now: () => number;
  readonly #onStale: (err: unknown) => void;
  #cached: JwtBundle | undefined;
  #freshUntil = 0;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #pending: { promise: Promise<JwtBundle>; generation: number } | undefined;
  /** Bumped by invalidate(): a fetch started before an update does not count as fresh after it. */
  #generation = 0;

  constructor(source: AgentIdentitySource, options: JwtBundleCacheOptions = {}) {
    this.#source = source;
    this.#maxAgeMs = options.maxAgeMs ?? 30_000;
    this.#retryMs = options.retryMs ?? 5000;
    this.#minRefetchMs = options.minRefetchMs ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#onStale = options.onStale ?? (() => {});
  }

  /** The cached bundle while fresh, else a refetch (shared by concurrent callers). */
  get(): Promise<JwtBundle> {
    if (this.#cached && this.#now() < this.#freshUntil) return Promise.resolve(this.#cached);
    return this.#fetch();
  }

  /** The source changed: the next get() refetches. */
  invalidate(): void {
    this.#freshUntil = 0;
    this.#generation++;
  }

  /** A token named a key the cache lacks: refetch unless the last fetch is too recent; undefined when not refetched. */
  async refetchForUnknownKey(): Promise<JwtBundle | undefined> {
    if (this.#now() - this.#lastAttempt < this.#minRefetchMs) return undefined;
    return this.#fetch();
  }

  #fetch(): Promise<JwtBundle> {
    const generation = this.#generation;
    if (this.#pending?.generation === generation) return this.#pending.promise;
    this.#lastAttempt = this.#now();
    const current = () => generation === this.#generation;
    const promise = this.#source.jwtBundle().then(
      (bundle) => {
        const fetched = { trustDomain: bundle.trustDomain, jwks: jwtSvidJwks(bundle.jwks), fetchedAt: this.#now() };
        if (current()) {
          this.#cached = fetched;
          this.#freshUntil = this.#now() + this.#maxAgeMs;
        }
        return fetched;
      },
      (err: unknown) => {
        if (!this.#cached) throw err;
        if (current()) this.#freshUntil = this.#now() + this.#retryMs;
        this.#onStale(err);
        return this.#cached;
      },
    ).finally(() => {
      if (this.#pending?.promise === promise) this.#pending = undefined;
    });
    this.#pending = { promise, generation };
    return promise;
  }
}
