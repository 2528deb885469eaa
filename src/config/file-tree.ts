/**
 * The bytes of a configuration directory read at one moment (the shell). A load parses these
 * bytes, never the live files, so a second reading can tell whether they changed meanwhile.
 */
import { readFileSync, statSync } from 'node:fs';

/** Where a load reads from: the config files to parse, and any file by absolute path. */
export interface ConfigSource {
  /** Absolute paths of the config files (*.yaml, *.yml, *.json), sorted. */
  configFiles(): readonly string[];
  /** Contents of a file, or undefined when it is missing or not a regular file. */
  read(absolutePath: string): Buffer | undefined;
}

function readIfFile(absolutePath: string): Buffer | undefined {
  try {
    return statSync(absolutePath).isFile() ? readFileSync(absolutePath) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads straight from disk (the first load, `config validate`). */
export function diskSource(configFiles: () => string[]): ConfigSource {
  return { configFiles, read: readIfFile };
}

/**
 * Every file read, kept in memory: the listed config files up front, referenced files (Rego
 * modules, bundles) on first read. A missing file is remembered as missing.
 */
export class FileTree implements ConfigSource {
  readonly #configFiles: readonly string[];
  readonly #bytes = new Map<string, Buffer | undefined>();

  constructor(configFiles: readonly string[], alsoRead: Iterable<string> = []) {
    this.#configFiles = configFiles;
    for (const file of [...configFiles, ...alsoRead]) this.read(file);
  }

  configFiles(): readonly string[] {
    return this.#configFiles;
  }

  read(absolutePath: string): Buffer | undefined {
    if (!this.#bytes.has(absolutePath)) this.#bytes.set(absolutePath, readIfFile(absolutePath));
    return this.#bytes.get(absolutePath);
  }

  /** Every path read, config files first. */
  paths(): string[] {
    return [...this.#bytes.keys()];
  }

  /** Same config file list, and every path read has the same bytes (or is missing in both). */
  equals(other: FileTree): boolean {
    if (this.#configFiles.length !== other.#configFiles.length || this.#configFiles.some((f, i) => other.#configFiles[i] !== f)) return false;
    if (this.#bytes.size !== other.#bytes.size) return false;
    for (const [file, bytes] of this.#bytes) {
      if (!other.#bytes.has(file)) return false;
      const theirs = other.#bytes.get(file);
      if (bytes === undefined || theirs === undefined ? bytes !== theirs : !bytes.equals(theirs)) return false;
    }
    return true;
  }
}
