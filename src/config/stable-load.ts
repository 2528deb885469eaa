/**
 * Loads a directory only once its files stand still (the shell). A writer that pauses between two
 * chunks leaves a file that may parse and still be half of what it will be: the files are read,
 * read again after `settleMs`, and only equal readings are parsed; after parsing, everything read
 * (referenced Rego modules and bundles included) is read once more and compared before the result
 * is returned. A renamed-in file (editors, `sed -i`) or a swapped ConfigMap `..data` link is
 * simply a new reading.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { ConfigInvalidError } from './errors.ts';
import { FileTree } from './file-tree.ts';
import { type LoadedConfig, listConfigFiles, loadConfigDir } from './load.ts';
import { contentVersion } from './snapshot.ts';

export interface StableLoadOptions {
  dir: string;
  /** Files must be unchanged for this long before they are parsed (0: only the after-parse comparison). */
  settleMs: number;
  /** Absolute paths read besides config files last time (referenced files), compared as well. */
  alsoRead?: readonly string[];
  /** Give up when the files are still changing after this long. */
  maxWaitMs?: number;
}

export interface StableLoad extends LoadedConfig {
  /** The content version, computed here so the caller does not hash on its thread. */
  version: string;
}

type Attempt = { ok: true; value: StableLoad } | { ok: false; error: unknown };

function attempt(dir: string, tree: FileTree): Attempt {
  try {
    const loaded = loadConfigDir(dir, tree);
    return { ok: true, value: { ...loaded, version: contentVersion(loaded.documents, loaded.files) } };
  } catch (error) {
    return { ok: false, error };
  }
}

function readTree(root: string, alsoRead: readonly string[]): FileTree {
  let files: string[];
  try {
    files = listConfigFiles(root);
  } catch {
    files = []; // a missing directory: loadConfigDir reports it
  }
  return new FileTree(files, alsoRead);
}

/** Resolves with the loaded configuration, or rejects with ConfigInvalidError (files kept changing, or invalid). */
export async function loadWhenStable(options: StableLoadOptions): Promise<StableLoad> {
  const root = path.resolve(options.dir);
  const deadline = Date.now() + (options.maxWaitMs ?? 30_000);
  let alsoRead = options.alsoRead ?? [];
  let before = readTree(root, alsoRead);
  for (let round = 0; ; round++) {
    // A retry waits at least a little, so files being written are not re-read in a busy loop.
    const wait = Math.max(options.settleMs, round > 0 ? 50 : 0);
    if (wait > 0) await sleep(wait);
    const tree = readTree(root, alsoRead);
    if (tree.equals(before)) {
      const result = attempt(root, tree);
      alsoRead = tree.paths();
      const after = readTree(root, alsoRead);
      if (after.equals(tree)) {
        if (result.ok) return result.value;
        throw result.error;
      }
      before = after;
    } else {
      before = tree;
    }
    if (Date.now() > deadline) {
      throw new ConfigInvalidError([{ file: options.dir, line: 0, path: '', message: `files were still changing after ${options.maxWaitMs ?? 30_000} ms; nothing applied (write files atomically: a temporary file, then rename)` }]);
    }
  }
}
