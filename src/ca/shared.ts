/**
 * A CA shared by replicas through PostgreSQL (with --database-url and a KEK). The journal and the
 * keys (sealed under the KEK, never in clear) are one versioned document. The first replica to
 * start creates the CA under the CA lock; the others load it. Every change (rotation steps, forced
 * rotations) runs under that lock on the newest document, so replicas never fork it; each replica
 * follows the document (LISTEN/NOTIFY, and polling in case a notification is lost) and re-publishes
 * its bundle to its SDS/ADS streams.
 *
 * Timed rotation steps are run by one leader (a PostgreSQL advisory lock, state/leader.ts). Each
 * replica writes a heartbeat with the bundle sequence it publishes; the leader activates a prepared
 * CA only once every live replica (heartbeat within `liveMs`) publishes the bundle that holds it.
 */
import type { CaSettings } from '../config/kinds/mesh.ts';
import type { Clock } from '../lib/clock.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { type CaDocument, Leadership, type SharedStateStore } from '../state/index.ts';
import { Authority } from './authority.ts';
import { MemoryCaStorage } from './storage.ts';

export const SHARED_CA_POLL_MS = 2000;
export const HEARTBEAT_MS = 1000;
/** A replica whose heartbeat is older than this no longer holds back an activation. */
export const LIVE_MS = 10_000;
const PRUNE_HEARTBEATS_MS = 3_600_000;

export interface SharedCaOptions {
  store: SharedStateStore;
  trustDomain: string;
  settings: () => CaSettings;
  clock: Clock;
  logger: Logger;
  pollMs?: number;
  /** After adopting a CA another replica changed (re-arm the rotator, update metrics). */
  onFollow?: () => void;
  /** This replica became (true) or stopped being (false) the rotation leader. */
  onLeadership?: (leader: boolean) => void;
  heartbeatMs?: number;
  liveMs?: number;
  leaderPollMs?: number;
}

export class SharedCa {
  readonly authority: Authority;
  readonly #o: SharedCaOptions;
  readonly #storage: MemoryCaStorage;
  #version: number;
  /** Memory may hold a change PostgreSQL refused: reload on the next sync. */
  #stale = false;
  #failing = false;
  #timer?: NodeJS.Timeout;
  #heartbeat?: NodeJS.Timeout;
  #unlisten?: () => Promise<void>;
  #leadership?: Leadership;
  #waitingFor?: number;
  /** Names this process in the replicas table. */
  readonly replicaId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;

  private constructor(o: SharedCaOptions, storage: MemoryCaStorage, authority: Authority, version: number) {
    this.#o = o;
    this.#storage = storage;
    this.authority = authority;
    this.#version = version;
  }

  /** Loads the shared CA, or creates it when this replica is the first. */
  static async open(o: SharedCaOptions): Promise<SharedCa> {
    const storage = new MemoryCaStorage(`the shared CA (${o.store.location})`);
    const options = { caDir: o.store.location, trustDomain: o.trustDomain, settings: o.settings, clock: o.clock, logger: o.logger, storage };
    return o.store.withCaLock(async (tx) => {
      const doc = await tx.read();
      if (doc) {
        storage.import(doc, (name, sealed) => o.store.open(name, sealed));
        o.logger.info({ version: doc.version }, 'loaded the shared CA from PostgreSQL');
        return new SharedCa(o, storage, Authority.open(options), doc.version);
      }
      const authority = Authority.initialize(options);
      await tx.write({ version: 1, ...storage.export((name, plain) => o.store.seal(name, plain)) });
      storage.dirty = false;
      return new SharedCa(o, storage, authority, 1);
    });
  }

  /** The stored CA, read only (`meshward ca status --database-url`); undefined when none is stored yet. */
  static async read(o: Pick<SharedCaOptions, 'store' | 'trustDomain' | 'settings' | 'clock'>): Promise<Authority | undefined> {
    const doc = await o.store.readCa();
    if (!doc) return undefined;
    const storage = new MemoryCaStorage(`the shared CA (${o.store.location})`);
    storage.import(doc, (name, sealed) => o.store.open(name, sealed));
    return Authority.open({ caDir: o.store.location, trustDomain: o.trustDomain, settings: o.settings, clock: o.clock, storage });
  }

  /** The stored document version this replica holds. */
  get version(): number {
    return this.#version;
  }

  #adopt(doc: CaDocument): void {
    this.#storage.import(doc, (name, sealed) => this.#o.store.open(name, sealed));
    this.#version = doc.version;
    this.#stale = false;
    this.authority.reload();
  }

  /**
   * Runs a change of the authority (`advance`, `rotate`) holding the CA lock, on the newest stored
   * CA, and stores the result before the lock is released.
   */
  async mutate<T>(fn: (authority: Authority) => T): Promise<T> {
    try {
      return await this.#o.store.withCaLock(async (tx) => {
        const doc = await tx.read();
        if (doc && (doc.version !== this.#version || this.#stale)) this.#adopt(doc);
        this.#storage.dirty = false;
        const out = fn(this.authority);
        if (this.#storage.dirty) {
          this.#stale = true; // until the write commits
          const next = (doc?.version ?? 0) + 1;
          await tx.write({ version: next, ...this.#storage.export((name, plain) => this.#o.store.seal(name, plain)) });
          this.#version = next;
          this.#storage.dirty = false;
        }
        return out;
      }).then((out) => {
        this.#stale = false;
        return out;
      });
    } catch (err) {
      this.#stale = true;
      if (err instanceof MeshwardError) throw err;
      throw new MeshwardError('UNAVAILABLE', `the shared CA in PostgreSQL cannot be changed now: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Re-reads the stored CA when another replica changed it; true when it did. */
  async sync(): Promise<boolean> {
    const doc = await this.#o.store.readCa();
    if (!doc || (doc.version === this.#version && !this.#stale)) return false;
    this.#adopt(doc);
    this.#o.logger.info({ version: doc.version, bundleSequence: this.authority.bundle().sequence }, 'following the shared CA');
    this.#beat();
    this.#o.onFollow?.();
    return true;
  }

  #syncQuietly = (): void => {
    this.sync().then(() => {
      if (this.#failing) {
        this.#o.logger.info('the shared CA is readable again');
        void this.#listen(); // the LISTEN connection did not survive the outage
      }
      this.#failing = false;
    }, (err: unknown) => {
      if (!this.#failing) this.#o.logger.warn({ err }, 'cannot read the shared CA; keeping the one loaded');
      this.#failing = true;
    });
  };

  get leader(): boolean {
    return this.#leadership?.leader ?? false;
  }

  /**
   * One timed rotation step (the leader's rotator): due transitions under the CA lock, an
   * activation only once every live replica publishes the current bundle.
   */
  async advance(): Promise<boolean> {
    const now = this.#o.clock.now();
    const live = await this.#o.store.liveReplicas(Date.now(), this.#o.liveMs ?? LIVE_MS);
    await this.#o.store.pruneHeartbeats(Date.now() - PRUNE_HEARTBEATS_MS); // replicas killed long ago
    const published = (seq: number) => live.every((r) => r.bundleSequence >= seq || r.id === this.replicaId);
    return this.mutate((a) => a.advance({
      mayActivate: (seq) => {
        if (published(seq) && this.authority.bundle().sequence >= seq) return true;
        if (this.#waitingFor !== seq) {
          this.#waitingFor = seq;
          this.#o.logger.info({ bundleSequence: seq, behind: live.filter((r) => r.bundleSequence < seq).map((r) => r.id), at: new Date(now).toISOString() }, 'CA activation waits until every live replica publishes the bundle');
        }
        return false;
      },
    }));
  }

  #beat = (): void => {
    this.#o.store.heartbeat({ id: this.replicaId, bundleSequence: this.authority.bundle().sequence, seenAt: Date.now() }).catch(() => {
      // PostgreSQL away: the sync loop logs it; a missing heartbeat only makes others wait less.
    });
  };

  /** Follows changes (notifications at once, polling as a fallback), beats, and competes for leadership. */
  async follow(): Promise<void> {
    this.#beat();
    this.#heartbeat = setInterval(this.#beat, this.#o.heartbeatMs ?? HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#timer = setInterval(this.#syncQuietly, this.#o.pollMs ?? SHARED_CA_POLL_MS);
    this.#timer.unref();
    await this.#listen();
    const store = this.#o.store;
    this.#leadership = new Leadership({
      connect: () => store.dedicatedClient(), name: `meshward:ca-leader:${store.schema}`, logger: this.#o.logger,
      intervalMs: this.#o.leaderPollMs ?? SHARED_CA_POLL_MS, onChange: (leader) => this.#o.onLeadership?.(leader),
    });
    await this.#leadership.start();
  }

  async #listen(): Promise<void> {
    await this.#unlisten?.();
    this.#unlisten = undefined;
    try {
      this.#unlisten = await this.#o.store.onCaChange((version) => {
        if (version !== this.#version) this.#syncQuietly();
      });
    } catch (err) {
      this.#o.logger.warn({ err }, 'cannot LISTEN for CA changes; polling only');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#heartbeat);
    await this.#leadership?.stop();
    await this.#unlisten?.();
    await this.#o.store.removeHeartbeat(this.replicaId).catch(() => {});
  }
}
