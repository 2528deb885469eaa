/**
 * Holds the current snapshot and publishes new ones (the shell around load + snapshot).
 * An invalid edit keeps the last good snapshot serving; the failure is logged and counted.
 */
import { type FSWatcher, watch } from 'node:fs';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';
import { ConfigInvalidError } from './errors.ts';
import { loadConfigDir } from './load.ts';
import { type ConfigSnapshot, createSnapshot } from './snapshot.ts';

export type SnapshotListener = (snapshot: ConfigSnapshot, previous: ConfigSnapshot) => void | Promise<void>;

export interface ReloadResult {
  changed: boolean;
  version: string;
  error?: ConfigInvalidError;
}

export interface ConfigStoreOptions {
  dir: string;
  logger: Logger;
  registry: Registry;
  /** Quiet time after a file event before reloading (editors write in several steps). */
  debounceMs?: number;
}

export class ConfigStore {
  #current: ConfigSnapshot;
  #listeners = new Set<SnapshotListener>();
  #watcher?: FSWatcher;
  #timer?: NodeJS.Timeout;
  #lastError?: ConfigInvalidError;
  readonly #options: ConfigStoreOptions;
  readonly #reloads;
  readonly #versionInfo;

  /** Loads the directory once; throws ConfigInvalidError if the first load fails (nothing to serve). */
  constructor(options: ConfigStoreOptions) {
    this.#options = options;
    this.#reloads = counter(options.registry, 'meshward_config_reloads_total', 'Configuration reloads by result.', ['result']);
    this.#versionInfo = gauge(options.registry, 'meshward_config_info', 'The configuration version being served (value 1).', ['version']);
    this.#current = createSnapshot(loadConfigDir(options.dir));
    this.#versionInfo.set({ version: this.#current.version }, 1);
  }

  current(): ConfigSnapshot {
    return this.#current;
  }

  /** The error of the last failed reload, if the last reload failed. */
  lastError(): ConfigInvalidError | undefined {
    return this.#lastError;
  }

  /** Calls `listener` on every new snapshot; returns the unsubscribe function. */
  subscribe(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reloads from disk. A new version is published to subscribers; an invalid one is not. */
  async reload(): Promise<ReloadResult> {
    let next: ConfigSnapshot;
    try {
      next = createSnapshot(loadConfigDir(this.#options.dir));
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      this.#lastError = err;
      this.#reloads.inc({ result: 'invalid' });
      this.#options.logger.error({ err: { code: err.code, issues: err.issues }, version: this.#current.version }, 'configuration reload rejected; still serving the last good version');
      return { changed: false, version: this.#current.version, error: err };
    }
    this.#lastError = undefined;
    if (next.version === this.#current.version) {
      this.#reloads.inc({ result: 'unchanged' });
      return { changed: false, version: next.version };
    }
    const previous = this.#current;
    this.#current = next;
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

  /** Watches the directory and reloads after a quiet period. */
  watch(): void {
    if (this.#watcher) return;
    const debounce = this.#options.debounceMs ?? 200;
    this.#watcher = watch(this.#options.dir, { recursive: true }, () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => void this.reload().catch((err) => this.#options.logger.error({ err }, 'reload failed')), debounce);
    });
    this.#watcher.on('error', (err) => this.#options.logger.error({ err }, 'configuration watcher failed'));
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#listeners.clear();
  }
}
