/**
 * Workload SVIDs held for SDS: one current certificate and key per SPIFFE ID, renewed at the
 * rotation point (ratio of its lifetime plus jitter) while anyone subscribes, and pushed to every
 * subscriber. Sidecars of the same service account share it, as SPIRE agents share an entry's SVID.
 */
import type { CaSettings } from '../config/kinds/mesh.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { Issuer, X509Svid } from './issuer.ts';
import { renewPoint } from './rotation.ts';

export interface WorkloadSvid {
  readonly svid: X509Svid;
  readonly privateKeyPem: string;
  /** When it is re-issued. */
  readonly renewAt: number;
}

export type SvidListener = (svid: WorkloadSvid) => void;

interface Entry {
  current?: WorkloadSvid;
  pending?: Promise<WorkloadSvid>;
  listeners: Set<SvidListener>;
  cancelTimer?: () => void;
}

const RETRY_MS = 10_000;

export class SvidCache {
  readonly #issuer: Issuer;
  readonly #clock: Clock;
  readonly #settings: () => CaSettings;
  readonly #logger?: Logger;
  readonly #random: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(deps: { issuer: Issuer; clock: Clock; settings: () => CaSettings; logger?: Logger; random?: () => number }) {
    this.#issuer = deps.issuer;
    this.#clock = deps.clock;
    this.#settings = deps.settings;
    this.#logger = deps.logger;
    this.#random = deps.random ?? Math.random;
  }

  #entry(spiffeId: string): Entry {
    let e = this.#entries.get(spiffeId);
    if (!e) this.#entries.set(spiffeId, (e = { listeners: new Set() }));
    return e;
  }

  #issue(spiffeId: string, e: Entry): Promise<WorkloadSvid> {
    e.pending ??= this.#issuer.issueWithNewKey(spiffeId, { requestedBy: spiffeId, method: 'sds' }).then(({ svid, privateKeyPem }) => {
      const s = this.#settings();
      const current: WorkloadSvid = { svid, privateKeyPem, renewAt: renewPoint(svid, s.rotationRatio, s.rotationJitter, this.#random()) };
      e.current = current;
      return current;
    }).finally(() => {
      e.pending = undefined;
    });
    return e.pending;
  }

  /** The current SVID of `spiffeId`, issuing one when there is none or it is due. */
  async get(spiffeId: string): Promise<WorkloadSvid> {
    const e = this.#entry(spiffeId);
    if (e.current && e.current.renewAt > this.#clock.now()) return e.current;
    return this.#issue(spiffeId, e);
  }

  /** Calls `listener` with every re-issued SVID of `spiffeId` until unsubscribed. */
  subscribe(spiffeId: string, listener: SvidListener): () => void {
    const e = this.#entry(spiffeId);
    e.listeners.add(listener);
    if (!e.cancelTimer) this.#schedule(spiffeId, e);
    return () => {
      e.listeners.delete(listener);
      if (e.listeners.size === 0) {
        e.cancelTimer?.();
        e.cancelTimer = undefined;
        if (!e.current || e.current.svid.notAfter <= this.#clock.now()) this.#entries.delete(spiffeId);
      }
    };
  }

  #schedule(spiffeId: string, e: Entry, delay?: number): void {
    const at = e.current?.renewAt ?? this.#clock.now();
    e.cancelTimer = this.#clock.setTimer(delay ?? Math.min(at - this.#clock.now(), 3_600_000), () => {
      e.cancelTimer = undefined;
      if (e.listeners.size === 0) return;
      if (e.current && e.current.renewAt > this.#clock.now()) {
        this.#schedule(spiffeId, e);
        return;
      }
      this.#issue(spiffeId, e).then((svid) => {
        for (const listener of e.listeners) listener(svid);
        if (e.listeners.size > 0 && !e.cancelTimer) this.#schedule(spiffeId, e);
      }, (err: unknown) => {
        this.#logger?.error({ err, spiffeId }, 'SVID renewal failed; retrying');
        if (e.listeners.size > 0 && !e.cancelTimer) this.#schedule(spiffeId, e, RETRY_MS);
      });
    });
  }

  /**
   * Re-issues now every SVID someone subscribes to and pushes it (a new CA became active: sidecars
   * move to it at once instead of at their renewal point).
   */
  renewAll(): void {
    for (const [spiffeId, e] of this.#entries) {
      if (e.listeners.size === 0) continue;
      e.cancelTimer?.();
      e.cancelTimer = undefined;
      e.current = undefined;
      this.#schedule(spiffeId, e, 0);
    }
  }

  /** Identities currently held (metrics). */
  size(): number {
    return this.#entries.size;
  }

  close(): void {
    for (const e of this.#entries.values()) e.cancelTimer?.();
    this.#entries.clear();
  }
}
