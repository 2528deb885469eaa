/**
 * Holds the snapshot being served and publishes new ones (the shell around load + snapshot).
 *
 * A reload reads the files in a worker thread, only once they stand still (stable-load.ts), and
 * parses and validates them there. The new snapshot then passes the gates (capabilities that must
 * be able to serve it, e.g. ext_authz compiling its policies) before it becomes current and is
 * published: `current()`, `GET /v1/config` and `meshward_config_info` always name the version
 * being served, and a rejected version is reported beside it with its errors.
 */
import path from 'node:path';
import type { Logger } from '../lib/logger.ts';
import { errorCodeOf, MeshwardError } from '../lib/errors.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';
import { ConfigInvalidError, type ConfigIssue, formatIssue } from './errors.ts';
import { loadConfigDir } from './load.ts';
import { ConfigLoadThread } from './load-thread.ts';
import { loadWhenStable } from './stable-load.ts';
import { type ConfigSnapshot, createSnapshot } from './snapshot.ts';
import { ConfigWatcher } from './watcher.ts';

export type SnapshotListener = (snapshot: ConfigSnapshot, previous: ConfigSnapshot) => void | Promise<void>;

/** Throws (any error) when the capability cannot serve `snapshot`; the snapshot is then rejected. */
export type SnapshotGate = (snapshot: ConfigSnapshot) => void | Promise<void>;

export interface ReloadResult {
  changed: boolean;
  /** The version being served after this reload. */
  version: string;
  error?: ConfigInvalidError;
  /** The rejected version, when it got far enough to have one (it failed a gate, not validation). */
  rejectedVersion?: string;
}

/** The last reload that was not applied, and why. */
export interface RejectedConfig {
  version?: string;
  error: ConfigInvalidError;
  at: number;
}

export interface ConfigStoreOptions {
  dir: string;
  logger: Logger;
  registry: Registry;
  /** Quiet time after a file event before reloading (editors write in several steps). */
  debounceMs?: number;
  /** Files must stay unchanged this long before a watched change is parsed (non-atomic writers). */
  settleMs?: number;
  /** Interval of the fallback rescan for changes the directory watches missed; 0 disables it. */
  rescanMs?: number;
  /** Parse in the calling thread instead of a worker (CLI one-shots). */
  inThread?: boolean;
}

export const DEFAULT_SETTLE_MS = 1000;
export const DEFAULT_RESCAN_MS = 10_000;

/** A gate's error as a configuration error located at the document it names (file:line), when it does. */
function toConfigError(err: unknown, gate: string): ConfigInvalidError {
  if (err instanceof ConfigInvalidError) return err;
  const details = err instanceof MeshwardError ? err.details : undefined;
  const file = typeof details?.file === 'string' ? details.file : '';
  const line = typeof details?.line === 'number' ? details.line : 0;
  let message = err instanceof Error ? err.message : String(err);
  const where = `${file}:${line} `;
  if (file && message.startsWith(where)) message = message.slice(where.length);
  return new ConfigInvalidError([{ file, line, path: '', message: `${gate} (${errorCodeOf(err)}): ${message}` }]);
}

export class ConfigStore {
  #current: ConfigSnapshot;
  #listeners = new Set<SnapshotListener>();
  #gates = new Map<string, SnapshotGate>();
  #watcher?: ConfigWatcher;
  #timer?: NodeJS.Timeout;
  #rejected?: RejectedConfig;
  #queue: Promise<unknown> = Promise.resolve();
  #watchReloadQueued = false;
  #thread?: ConfigLoadThread;
  #closed = false;
  readonly #options: ConfigStoreOptions;
  readonly #reloads;
  readonly #versionInfo;
  readonly #rejectedInfo;

  /** Loads the directory once, on this thread; throws ConfigInvalidError if it fails (nothing to serve). */
  constructor(options: ConfigStoreOptions) {
    this.#options = options;
    this.#reloads = counter(options.registry, 'meshward_config_reloads_total', 'Configuration reloads by result.', ['result']);
    this.#versionInfo = gauge(options.registry, 'meshward_config_info', 'The configuration version being served (value 1).', ['version']);
    this.#rejectedInfo = gauge(options.registry, 'meshward_config_rejected_info', 'The last configuration version rejected since the served one was applied (value 1; none when the last reload succeeded), with the location of its first error.', ['version', 'location']);
    this.#current = createSnapshot(loadConfigDir(options.dir));
    this.#versionInfo.set({ version: this.#current.version }, 1);
  }

  /** The snapshot being served. */
  current(): ConfigSnapshot {
    return this.#current;
  }

  /** The error of the last failed reload, if the last reload failed. */
  lastError(): ConfigInvalidError | undefined {
    return this.#rejected?.error;
  }

  /** The last rejected configuration, if the last reload was rejected. */
  rejected(): RejectedConfig | undefined {
    return this.#rejected;
  }

  /** Calls `listener` on every new snapshot; returns the unsubscribe function. */
  subscribe(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A snapshot becomes current only if `check` accepts it; returns the function that removes the gate. */
  gate(name: string, check: SnapshotGate): () => void {
    this.#gates.set(name, check);
    return () => this.#gates.delete(name);
  }

  /**
   * Reloads from disk (serialised with other reloads). A new version that validates and passes
   * every gate is published; otherwise the served one stays and the rejection is recorded.
   */
  reload(options: { settleMs?: number } = {}): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reloadNow(options.settleMs ?? 0));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #reloadNow(settleMs: number): Promise<ReloadResult> {
    let next: ConfigSnapshot;
    try {
      next = await this.#load(settleMs);
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      return this.#reject(err, undefined, 'invalid');
    }
    if (next.version === this.#current.version) {
      this.#clearRejected();
      this.#reloads.inc({ result: 'unchanged' });
      return { changed: false, version: next.version };
    }
    for (const [name, check] of this.#gates) {
      try {
        await check(next);
      } catch (err) {
        return this.#reject(toConfigError(err, name), next.version, 'rejected');
      }
    }
    return this.#apply(next);
  }

  async #load(settleMs: number): Promise<ConfigSnapshot> {
    const request = { dir: this.#options.dir, settleMs, alsoRead: this.#referencedFiles() };
    if (this.#options.inThread) return createSnapshot(await loadWhenStable(request));
    this.#thread ??= new ConfigLoadThread();
    try {
      return createSnapshot(await this.#thread.load(request));
    } catch (err) {
      if (err instanceof ConfigInvalidError || this.#closed) throw err;
      // The thread could not run (or crashed): a stalled event loop beats not reloading at all.
      this.#options.logger.warn({ err }, 'configuration load thread failed; loading on the event loop instead');
      return createSnapshot(await loadWhenStable(request));
    }
  }

  /** Absolute paths of the files the served snapshot references (Rego modules, bundles). */
  #referencedFiles(): string[] {
    return [...this.#current.files.keys()].map((k) => path.resolve(this.#current.root, k));
  }

  #reject(error: ConfigInvalidError, version: string | undefined, result: 'invalid' | 'rejected'): ReloadResult {
    this.#rejected = { ...(version ? { version } : {}), error, at: Date.now() };
    this.#rejectedInfo.reset();
    const first: ConfigIssue | undefined = error.issues[0];
    this.#rejectedInfo.set({ version: version ?? '', location: first ? `${first.file}:${first.line}` : '' }, 1);
    this.#reloads.inc({ result });
    this.#options.logger.error(
      { err: { code: error.code, issues: error.issues.slice(0, 10).map(formatIssue) }, rejected: version, version: this.#current.version },
      'configuration reload rejected; still serving the last good version',
    );
    return { changed: false, version: this.#current.version, error, ...(version ? { rejectedVersion: version } : {}) };
  }

  #clearRejected(): void {
    this.#rejected = undefined;
    this.#rejectedInfo.reset();
  }

  async #apply(next: ConfigSnapshot): Promise<ReloadResult> {
    const previous = this.#current;
    this.#current = next;
    this.#clearRejected();
    this.#versionInfo.reset();
    this.#versionInfo.set({ version: next.version }, 1);
    this.#reloads.inc({ result: 'applied' });
    this.#options.logger.info({ version: next.version, previous: previous.version, documents: next.documents.length }, 'configuration applied');
    for (const listener of this.#listeners) {
      try {
        await listener(next, previous);
      } catch (err) {
        this.#options.logger.error({ err }, 'configuration subscriber failed');
      }
    }
    return { changed: true, version: next.version };
  }

  /** Watches the directory and reloads after a quiet period, once the files stand still. */
  watch(): void {
    if (this.#watcher) return;
    const debounce = this.#options.debounceMs ?? 200;
    this.#watcher = new ConfigWatcher({
      dir: this.#options.dir,
      logger: this.#options.logger,
      rescanMs: this.#options.rescanMs ?? DEFAULT_RESCAN_MS,
      alsoWatch: () => this.#referencedFiles(),
      onChange: () => {
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.#watchReload(), debounce);
      },
    });
    this.#watcher.start();
  }

  /** One queued watch reload at most: events during a reload fold into the next one. */
  #watchReload(): void {
    if (this.#watchReloadQueued) return;
    this.#watchReloadQueued = true;
    const run = this.#queue.then(() => {
      this.#watchReloadQueued = false;
      return this.#reloadNow(this.#options.settleMs ?? DEFAULT_SETTLE_MS);
    });
    this.#queue = run.catch((err) => {
      if (!this.#closed) this.#options.logger.error({ err }, 'configuration reload failed');
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#thread?.close();
    this.#thread = undefined;
    this.#listeners.clear();
    this.#gates.clear();
  }
}
