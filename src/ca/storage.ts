/**
 * Where the authority keeps its journal and keys. `FileCaStorage` is the data dir (`<data>/ca`,
 * 0600 files); `MemoryCaStorage` holds them in the process for a CA shared through PostgreSQL
 * (shared.ts writes it there, keys sealed under the KEK, as one versioned document).
 */
import type { KeyObject } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import path from 'node:path';
import { caInvalid } from './errors.ts';
import { ensurePrivateDir, readKey, removeKey, writeKey } from './files.ts';
import { type Journal, readJournal, writeJournal } from './journal.ts';

export interface CaStorage {
  /** Where it is, for messages. */
  describe(keyRef?: string): string;
  /** Prepares the storage for a new CA. */
  prepare(): void;
  readJournal(): Journal | undefined;
  writeJournal(journal: Journal): void;
  /** Stores a key; returns the reference the journal keeps (`keys/<name>.key.pem`). */
  writeKey(name: string, key: KeyObject): string;
  readKey(ref: string): KeyObject;
  removeKey(ref: string): void;
}

export class FileCaStorage implements CaStorage {
  constructor(readonly caDir: string) {}
  describe(keyRef?: string): string {
    return keyRef ? path.join(this.caDir, keyRef) : this.caDir;
  }
  prepare(): void {
    ensurePrivateDir(this.caDir);
  }
  readJournal(): Journal | undefined {
    return readJournal(this.caDir);
  }
  writeJournal(journal: Journal): void {
    writeJournal(this.caDir, journal);
  }
  writeKey(name: string, key: KeyObject): string {
    return writeKey(this.caDir, name, key);
  }
  readKey(ref: string): KeyObject {
    return readKey(this.caDir, ref);
  }
  removeKey(ref: string): void {
    removeKey(this.caDir, ref);
  }
}

/** A CA document as stored (journal JSON, keys as sealed text). */
export interface StoredCa {
  journal: string;
  keys: Record<string, string>;
}

export class MemoryCaStorage implements CaStorage {
  #journal?: string;
  readonly #keys = new Map<string, KeyObject>();
  /** Sealed text per key, kept so unchanged keys are not sealed again on every write. */
  readonly #sealed = new Map<string, string>();
  /** Set by every write; shared.ts clears it before a mutation and stores the CA when set. */
  dirty = false;

  constructor(readonly label: string) {}

  describe(keyRef?: string): string {
    return keyRef ? `${this.label} key ${keyRef}` : this.label;
  }
  prepare(): void {}
  readJournal(): Journal | undefined {
    return this.#journal === undefined ? undefined : (JSON.parse(this.#journal) as Journal);
  }
  writeJournal(journal: Journal): void {
    this.#journal = JSON.stringify(journal);
    this.dirty = true;
  }
  writeKey(name: string, key: KeyObject): string {
    const ref = path.posix.join('keys', `${name}.key.pem`);
    this.#keys.set(ref, key);
    this.#sealed.delete(ref);
    this.dirty = true;
    return ref;
  }
  readKey(ref: string): KeyObject {
    const key = this.#keys.get(ref);
    if (!key) throw caInvalid(`${this.describe(ref)} is missing (the CA journal refers to it)`, { key: ref });
    return key;
  }
  removeKey(ref: string): void {
    this.#keys.delete(ref);
    this.#sealed.delete(ref);
    this.dirty = true;
  }

  /** The CA as stored: every key sealed with `seal(ref, pkcs8 PEM)`. */
  export(seal: (name: string, plain: Buffer) => string): StoredCa {
    if (this.#journal === undefined) throw caInvalid(`${this.label} holds no CA journal`);
    const keys: Record<string, string> = {};
    for (const [ref, key] of this.#keys) {
      let sealed = this.#sealed.get(ref);
      if (!sealed) this.#sealed.set(ref, (sealed = seal(ref, Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }) as string))));
      keys[ref] = sealed;
    }
    return { journal: this.#journal, keys };
  }

  /** Replaces everything with a stored CA, opening each key with `open`. */
  import(stored: StoredCa, open: (name: string, sealed: string) => Buffer): void {
    const keys = new Map<string, KeyObject>();
    for (const [ref, sealed] of Object.entries(stored.keys)) keys.set(ref, createPrivateKey(open(ref, sealed)));
    this.#journal = stored.journal;
    this.#keys.clear();
    this.#sealed.clear();
    for (const [ref, key] of keys) this.#keys.set(ref, key);
    for (const [ref, sealed] of Object.entries(stored.keys)) this.#sealed.set(ref, sealed);
    this.dirty = false;
  }
}
