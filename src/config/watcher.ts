/**
 * Notices changes below a configuration directory (the shell). Directories are watched, not
 * files: a file watch follows an inode, and a save by rename (vim, `sed -i`, a Kubernetes
 * ConfigMap's `..data` link swap) replaces the inode, after which a file watch hears nothing.
 * Node 20's recursive `fs.watch` on Linux watches files that way, so each directory gets its own
 * non-recursive watch, re-synced on every event. A periodic rescan of sizes, mtimes and inodes
 * catches what events miss (network filesystems, dropped inotify events, a watch limit reached).
 */
import { type Dirent, type FSWatcher, readdirSync, realpathSync, statSync, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger.ts';
import { isConfigFolder, listConfigFiles } from './load.ts';

export interface ConfigWatcherOptions {
  dir: string;
  logger: Logger;
  /** Called on every change noticed (the caller debounces). */
  onChange(): void;
  /** Files read besides config files (referenced Rego modules and bundles), rescanned too. */
  alsoWatch?: () => readonly string[];
  /** Interval of the fallback rescan; 0 disables it. */
  rescanMs: number;
}

/** The directories below root a load reads from (the same rules as listConfigFiles: symlinked folders followed, each real one once). */
function configDirectories(root: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const realOr = (d: string): string => {
    try {
      return realpathSync(d);
    } catch {
      return d;
    }
  };
  const walk = (d: string): void => {
    const real = realOr(d);
    if (seen.has(real)) return;
    seen.add(real);
    out.push(d);
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (isConfigFolder(d, e)) walk(path.join(d, e.name));
  };
  walk(root);
  return out;
}

function inodeOf(dir: string): number | undefined {
  try {
    return statSync(dir).ino;
  } catch {
    return undefined;
  }
}

/** size, mtime and inode of every file a load reads, following symlinks. */
async function signature(files: readonly string[]): Promise<string> {
  const parts = await Promise.all(files.map(async (f) => {
    try {
      const s = await stat(f, { bigint: true });
      return `${f}\0${s.size}\0${s.mtimeNs}\0${s.ino}`;
    } catch {
      return `${f}\0missing`;
    }
  }));
  return parts.join('\n');
}

export class ConfigWatcher {
  readonly #options: ConfigWatcherOptions;
  readonly #root: string;
  /** Per directory: its watch and the inode watched (a directory replaced by rename is watched anew). */
  readonly #watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  #rescanTimer?: NodeJS.Timeout;
  #lastSignature?: string;
  #closed = false;

  constructor(options: ConfigWatcherOptions) {
    this.#options = options;
    this.#root = path.resolve(options.dir);
  }

  start(): void {
    this.#sync();
    void this.#rescan();
    if (this.#options.rescanMs > 0) {
      this.#rescanTimer = setInterval(() => void this.#rescan(), this.#options.rescanMs);
      this.#rescanTimer.unref();
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#rescanTimer);
    for (const w of this.#watchers.values()) w.watcher.close();
    this.#watchers.clear();
  }

  /** Watches every directory present (anew when it was replaced), and stops watching the ones gone. */
  #sync(): void {
    if (this.#closed) return;
    const dirs = new Map(configDirectories(this.#root).map((d) => [d, inodeOf(d)] as const));
    for (const [dir, w] of this.#watchers) {
      if (dirs.get(dir) !== w.ino) {
        w.watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const [dir, ino] of dirs) if (ino !== undefined && !this.#watchers.has(dir)) this.#watchDirectory(dir, ino);
  }

  #watchDirectory(dir: string, ino: number): void {
    try {
      const watcher = watch(dir, { persistent: false }, () => this.#changed());
      watcher.on('error', (err) => {
        // The directory went away or the watch broke: drop it; the next sync or rescan re-adds it.
        watcher.close();
        if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
        this.#options.logger.debug({ err, dir }, 'configuration directory watch ended');
        this.#changed();
      });
      this.#watchers.set(dir, { watcher, ino });
    } catch (err) {
      this.#options.logger.warn({ err, dir }, 'cannot watch configuration directory; the periodic rescan covers it');
    }
  }

  #changed(): void {
    if (this.#closed) return;
    this.#sync();
    this.#options.onChange();
  }

  async #rescan(): Promise<void> {
    if (this.#closed) return;
    let files: string[];
    try {
      files = [...listConfigFiles(this.#root), ...(this.#options.alsoWatch?.() ?? [])];
    } catch {
      files = [];
    }
    const next = await signature(files);
    const changed = this.#lastSignature !== undefined && next !== this.#lastSignature;
    this.#lastSignature = next;
    if (changed) this.#changed();
    else this.#sync();
  }
}
