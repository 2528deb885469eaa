/**
 * Which CA `serve` signs with. A plugged-in CA in Istio's `cacerts` layout (a mounted Secret) wins:
 * from `--ca-dir` / MESHWARD_CA_DIR, else from `<dataDir>/ca/plugged` when that directory holds
 * any of the files. Otherwise the data dir's own CA (created self-signed on first start, or
 * imported earlier with `meshward ca init --from`). Files that are present but wrong fail the start
 * naming the file (CA_INVALID): never a silent fallback to a generated CA.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { CaSettings } from '../config/kinds/mesh.ts';
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { Authority } from './authority.ts';
import { fileExists } from './files.ts';
import { PLUGGED_IN_FILES } from './plugged-in.ts';

export type CaMode = 'plugged' | 'generated';

export interface CaSource {
  authority: Authority;
  mode: CaMode;
  /** Where the CA comes from: the plugged-in directory, or the data dir's CA directory. */
  source: string;
  /** SHA-256 of the plugged-in files' content in use (plugged-in directories only). */
  filesDigest?: string;
}

export interface CaSourceOptions {
  dataDir: string;
  /** `<dataDir>/ca`: the data dir's own CA. */
  caDir: string;
  /** `--ca-dir`: must hold a valid plugged-in CA. */
  pluggedDir?: string;
  trustDomain: string;
  settings: () => CaSettings;
  clock: Clock;
  logger: Logger;
}

/** Where serve looks for a plugged-in CA without `--ca-dir` (the manifest mounts the Secret there). */
export const defaultPluggedDir = (caDir: string): string => path.join(caDir, 'plugged');

/** State of a plugged-in CA (journal, a 0600 copy of its key, the JWT key), one dir per distinct set of files. */
const pluggedStateRoot = (caDir: string): string => path.join(caDir, 'plugged-in');

const presentFiles = (dir: string): string[] => Object.values(PLUGGED_IN_FILES).filter((f) => fileExists(path.join(dir, f)));

/** Content digest of the cacerts files (a changed Secret changes it); absent files count as empty. */
export function pluggedFilesDigest(dir: string): string {
  const hash = createHash('sha256');
  for (const f of Object.values(PLUGGED_IN_FILES)) {
    const file = path.join(dir, f);
    hash.update(f).update('\0').update(fileExists(file) ? readFileSync(file) : Buffer.alloc(0)).update('\0');
  }
  return hash.digest('hex');
}

/** True when serve would sign with a plugged-in CA: `--ca-dir` given, or files in `<caDir>/plugged`. */
export function pluggedCaConfigured(caDir: string, pluggedDir: string | undefined): boolean {
  return pluggedDir !== undefined || presentFiles(defaultPluggedDir(caDir)).length > 0;
}

export function openCaSource(o: CaSourceOptions): CaSource {
  const pluggedDir = o.pluggedDir ?? defaultPluggedDir(o.caDir);
  if (!pluggedCaConfigured(o.caDir, o.pluggedDir)) {
    if (fileExists(pluggedDir)) o.logger.warn({ dir: pluggedDir }, `${pluggedDir} holds none of the plugged-in CA files (${Object.values(PLUGGED_IN_FILES).join(', ')}); using the data dir's CA`);
    const authority = Authority.open({ caDir: o.caDir, trustDomain: o.trustDomain, settings: o.settings, clock: o.clock, logger: o.logger }, true);
    return { authority, mode: authority.mode === 'plugged-in' ? 'plugged' : 'generated', source: o.caDir };
  }
  return openPlugged(o, pluggedDir);
}

function openPlugged(o: CaSourceOptions, pluggedDir: string): CaSource {
  const filesDigest = pluggedFilesDigest(pluggedDir);
  const stateRoot = pluggedStateRoot(o.caDir);
  const stateDir = path.join(stateRoot, filesDigest.slice(0, 16));
  const options = { caDir: stateDir, trustDomain: o.trustDomain, settings: o.settings, clock: o.clock, logger: o.logger };
  // Validates every file (naming the wrong one) before anything is written.
  const authority = Authority.exists(stateDir) ? Authority.open(options) : Authority.importPluggedIn(options, pluggedDir);
  removeStaleState(stateRoot, stateDir, o.logger);
  return { authority, mode: 'plugged', source: pluggedDir, filesDigest };
}

/** Deletes the state (and key copies) of plugged-in CAs whose files were replaced. */
function removeStaleState(stateRoot: string, current: string, logger: Logger): void {
  for (const entry of readdirSync(stateRoot)) {
    const dir = path.join(stateRoot, entry);
    if (dir === current) continue;
    rmSync(dir, { recursive: true, force: true });
    logger.info({ dir }, 'removed the state of a replaced plugged-in CA');
  }
}

/** The fields of the start log line that says which CA signs. */
export function describeCa(source: CaSource): Record<string, unknown> {
  const signer = source.authority.active();
  const cert = new X509Certificate(signer.chain[0]!);
  const root = new X509Certificate(signer.root);
  const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
  return {
    mode: source.mode, source: source.source, trustDomain: source.authority.trustDomain,
    subject: oneLine(cert.subject), serial: cert.serialNumber, spkiSha256: spki, notAfter: new Date(cert.validTo).toISOString(),
    root: oneLine(root.subject), rootSha256: root.fingerprint256, rotation: source.mode === 'plugged' ? 'by replacing the files (restart)' : 'automatic',
  };
}

const oneLine = (subject: string): string => subject.replace(/\n/g, ', ');

/** How often the plugged-in files are compared with those in use. */
export const PLUGGED_CHECK_INTERVAL_MS = 60_000;

/**
 * Warns (once per new content) when the plugged-in files change on disk, e.g. an updated Secret:
 * the running CA stays in use until a restart, which then signs with the new files.
 */
export function watchPluggedFiles(dir: string, inUse: string, deps: { clock: Clock; logger: Logger; intervalMs?: number }): () => void {
  let warned = inUse;
  let cancel: (() => void) | undefined;
  const check = () => {
    let now: string;
    try {
      now = pluggedFilesDigest(dir);
    } catch (err) {
      deps.logger.warn({ err, dir }, 'cannot read the plugged-in CA files; the running CA stays in use');
      now = warned;
    }
    if (now !== warned) {
      warned = now;
      deps.logger.warn({ dir }, now === inUse ? 'the plugged-in CA files are back to those in use' : 'the plugged-in CA files changed on disk; restart meshward to sign with them (the running CA stays in use until then)');
    }
    cancel = deps.clock.setTimer(deps.intervalMs ?? PLUGGED_CHECK_INTERVAL_MS, check);
  };
  cancel = deps.clock.setTimer(deps.intervalMs ?? PLUGGED_CHECK_INTERVAL_MS, check);
  return () => cancel?.();
}
