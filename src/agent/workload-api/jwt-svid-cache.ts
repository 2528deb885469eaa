/**
 * JWT-SVIDs by audience set, reused until half their lifetime is gone (as SPIRE's agent caches
 * them): a workload asking for a token per request costs meshward one signature per half-life,
 * not one per call. Emptied on every source update (renewal, CA rotation: the signing key may have
 * changed). Bounded: the oldest entry goes when `maxEntries` is reached.
 */
export interface JwtSvid {
  spiffeId: string;
  token: string;
  expiresAt: Date;
}

interface Entry {
  svid: JwtSvid;
  reuseUntil: number;
}

export class JwtSvidCache {
  readonly #fetch: (audiences: string[]) => Promise<JwtSvid>;
  readonly #now: () => number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<JwtSvid>>();
  #generation = 0;

  constructor(fetch: (audiences: string[]) => Promise<JwtSvid>, options: { now?: () => number; maxEntries?: number } = {}) {
    this.#fetch = fetch;
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? 1000;
  }

  /** A JWT-SVID for exactly these audiences (order and duplicates do not matter). */
  get(audiences: string[]): Promise<JwtSvid> {
    const unique = [...new Set(audiences)].sort();
    const key = JSON.stringify(unique);
    const entry = this.#entries.get(key);
    if (entry && this.#now() < entry.reuseUntil) return Promise.resolve(entry.svid);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const generation = this.#generation;
    const issuedAt = this.#now();
    const promise = this.#fetch(unique).then((svid) => {
      if (generation === this.#generation) this.#store(key, { svid, reuseUntil: issuedAt + (svid.expiresAt.getTime() - issuedAt) / 2 });
      return svid;
    }).finally(() => {
      if (this.#pending.get(key) === promise) this.#pending.delete(key);
    });
    this.#pending.set(key, promise);
    return promise;
  }

  /** The source changed: issue new tokens from now on. */
  clear(): void {
    this.#entries.clear();
    this.#pending.clear();
    this.#generation++;
  }

  #store(key: string, entry: Entry): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, entry);
  }
}
