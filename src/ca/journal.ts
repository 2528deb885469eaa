/**
 * The CA journal (`<dataDir>/ca/journal.json`, 0600): roots, CA slots and their rotation phase.
 * Written before a new CA is used, so a restarted server resumes the same phase (SPIRE's journal).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileExists, writePrivateFile } from './files.ts';

export interface RootEntry {
  id: string;
  certPem: string;
  /** Key file relative to the CA dir; absent for a plugged-in root (its key is not ours). */
  keyFile?: string;
  /** After this time the root leaves the trust bundle. */
  dropAt?: number;
}

export type SlotState = 'prepared' | 'active' | 'retired';

export interface SlotEntry {
  id: string;
  state: SlotState;
  rootId: string;
  /** The signing CA certificate. */
  certPem: string;
  /** Intermediates between the signing certificate and the root (plugged-in chains), PEM. */
  chainPem: string;
  keyFile: string;
  jwtKeyFile: string;
  jwtKid: string;
  notBefore: number;
  notAfter: number;
  preparedAt: number;
  activateAt?: number;
  activatedAt?: number;
  /** Retired slots leave the bundle (JWT keys) and lose their keys after this time. */
  dropAt?: number;
}

export interface Journal {
  version: 1;
  mode: 'meshward' | 'plugged-in';
  trustDomain: string;
  /** Increases whenever the trust bundle changes (SPIFFE bundle `spiffe_sequence`). */
  bundleSequence: number;
  roots: RootEntry[];
  slots: SlotEntry[];
}

export const journalFile = (caDir: string): string => path.join(caDir, 'journal.json');

export function readJournal(caDir: string): Journal | undefined {
  const file = journalFile(caDir);
  if (!fileExists(file)) return undefined;
  const journal = JSON.parse(readFileSync(file, 'utf8')) as Journal;
  if (journal.version !== 1) throw new Error(`${file}: unsupported journal version ${journal.version}`);
  return journal;
}

export function writeJournal(caDir: string, journal: Journal): void {
  writePrivateFile(journalFile(caDir), JSON.stringify(journal, null, 2));
}
