/**
 * Serving certificates from files (cert-manager, Vault agent, `meshward ca` output), for the
 * gRPC port and the HTTP API. The files are checked before they are used (PEM that parses, a key
 * that matches the certificate, a certificate that has not expired) and re-read while meshward
 * runs, so a rotated pair is served on new connections without a restart. A rotated pair that
 * fails the checks is logged and the last good pair stays in use, the way a bad config edit keeps
 * the last good snapshot.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { status as GrpcStatus, ServerCredentials } from '@grpc/grpc-js';
import { type Clock, systemClock } from '../lib/clock.ts';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, gauge, type Registry } from '../lib/metrics.ts';

registerErrorCodes({
  TLS_FILES_INVALID: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 500, exit: 78, description: 'A TLS certificate or key file is missing, unreadable, not PEM, expired, or the key does not match the certificate.' },
});

export class TlsFilesInvalidError extends MeshwardError {
  constructor(message: string, cause?: unknown) {
    super('TLS_FILES_INVALID', message, cause === undefined ? undefined : { cause });
  }
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA certificates (PEM bundle) that client certificates are verified against (HTTPS only). */
  caFile?: string;
}

export interface KeyPair {
  /** PEM certificate chain, leaf first. */
  cert: Buffer;
  /** PEM private key. */
  key: Buffer;
  /** The leaf's serial number and expiry, for logs. */
  serialNumber: string;
  validTo: string;
  /** Client CA certificates, one PEM block each, when `caFile` is set. */
  ca?: string[];
}

/** How often the files are re-read by default; rotation tools replace them well before expiry. */
export const DEFAULT_TLS_REFRESH_MS = 60_000;

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsFilesInvalidError(`${file}: cannot read the ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
}

/** Reads and checks a certificate/key pair; throws TlsFilesInvalidError naming the file at fault. */
export function readKeyPair(files: TlsFiles, nowMs: number): KeyPair {
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'private key');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsFilesInvalidError(`${files.certFile}: not a PEM certificate (${(err as Error).message})`, err);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsFilesInvalidError(`${files.keyFile}: not a PEM private key (${(err as Error).message})`, err);
  }
  if (!leaf.checkPrivateKey(privateKey)) throw new TlsFilesInvalidError(`${files.keyFile}: the private key does not match the certificate in ${files.certFile}`);
  if (Date.parse(leaf.validTo) <= nowMs) throw new TlsFilesInvalidError(`${files.certFile}: the certificate expired at ${new Date(leaf.validTo).toISOString()}`);
  const ca = files.caFile === undefined ? undefined : readCaBundle(files.caFile);
  return { cert, key, serialNumber: leaf.serialNumber, validTo: new Date(leaf.validTo).toISOString(), ...(ca ? { ca } : {}) };
}

/**
 * The certificates of a PEM bundle, each of which must parse (an empty or damaged bundle would
 * reject every client). Split into blocks because OpenSSL stops at a block glued to the previous
 * one's END line, as `cat a.pem b.pem` makes when a.pem lacks its final newline.
 */
function readCaBundle(file: string): string[] {
  const pem = read(file, 'CA bundle');
  const blocks = pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsFilesInvalidError(`${file}: no PEM certificate in the CA bundle`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TlsFilesInvalidError(`${file}: certificate ${i + 1} of the CA bundle does not parse (${(err as Error).message})`, err);
    }
  });
  return blocks;
}

export interface TlsFilesWatcherOptions {
  /** What the pair serves (`grpc`, `http`), for logs. */
  label: string;
  logger: Logger;
  clock?: Clock;
  refreshIntervalMs?: number;
  /** Where to export the served certificate's expiry and the reload results. */
  registry?: Registry;
}

/** The current checked pair of `files`, re-read every refresh interval; listeners hear each new pair. */
export class TlsFilesWatcher {
  readonly #files: TlsFiles;
  readonly #options: TlsFilesWatcherOptions;
  readonly #clock: Clock;
  readonly #listeners = new Set<(pair: KeyPair) => void>();
  #current: KeyPair;
  #fingerprint: string;
  #cancel?: () => void;

  /** Reads the pair now: a bad pair at startup fails startup (TlsFilesInvalidError). */
  constructor(files: TlsFiles, options: TlsFilesWatcherOptions) {
    this.#files = files;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#current = readKeyPair(files, this.#clock.now());
    this.#fingerprint = fingerprint(this.#current);
    this.#exportExpiry();
    this.#schedule();
  }

  current(): KeyPair {
    return this.#current;
  }

  onChange(listener: (pair: KeyPair) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads the files now (the timer calls this); returns true when a new pair was taken. */
  refresh(): boolean {
    const { label, logger } = this.#options;
    let next: KeyPair;
    try {
      next = readKeyPair(this.#files, this.#clock.now());
    } catch (err) {
      logger.error({ err: { code: (err as MeshwardError).code, message: (err as Error).message }, serving: label, keptSerial: this.#current.serialNumber }, 'rotated TLS files rejected; still serving the last good certificate');
      this.#countReload('rejected');
      return false;
    }
    const print = fingerprint(next);
    if (print === this.#fingerprint) return false;
    this.#current = next;
    this.#fingerprint = print;
    this.#countReload('rotated');
    this.#exportExpiry();
    logger.info({ serving: label, serialNumber: next.serialNumber, validTo: next.validTo }, 'serving a rotated TLS certificate');
    for (const listener of this.#listeners) listener(next);
    return true;
  }

  close(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#listeners.clear();
  }

  /** An alert on this gauge catches a rotation that stopped (cert-manager failing) before clients do. */
  #exportExpiry(): void {
    if (!this.#options.registry) return;
    gauge(this.#options.registry, 'meshward_tls_certificate_expiry_timestamp_seconds', 'Expiry (unix time) of the serving certificate in use, by listener (grpc, http).', ['listener'])
      .set({ listener: this.#options.label }, Math.floor(Date.parse(this.#current.validTo) / 1000));
  }

  #countReload(result: 'rotated' | 'rejected'): void {
    if (!this.#options.registry) return;
    counter(this.#options.registry, 'meshward_tls_reloads_total', 'Serving certificate files re-read and found changed, by listener and result (rotated, rejected).', ['listener', 'result'])
      .inc({ listener: this.#options.label, result });
  }

  #schedule(): void {
    this.#cancel = this.#clock.setTimer(this.#options.refreshIntervalMs ?? DEFAULT_TLS_REFRESH_MS, () => {
      this.refresh();
      this.#schedule();
    });
  }
}

/** Key material is compared by digest, so the previous pair's bytes need not be kept twice. */
function fingerprint(pair: KeyPair): string {
  return createHash('sha256').update(pair.cert).update('\0').update(pair.key).update('\0').update((pair.ca ?? []).join('\n')).digest('hex');
}

/**
 * grpc-js server credentials that serve the watcher's current pair: each new TLS connection gets
 * the pair in force when it connects. No client certificate is requested: the gRPC port
 * authenticates callers by their bearer tokens.
 *
 * Why a subclass rather than grpc-js's `experimental.createCertificateProviderServerCredentials`:
 * that one starts with no key material and relies on the provider answering asynchronously, and a
 * server bound before the first answer drops connections; here the first pair is there at bind.
 */
class RotatingServerCredentials extends ServerCredentials {
  constructor(watcher: TlsFilesWatcher) {
    const { cert, key } = watcher.current();
    super({ requestCert: false }, { cert, key });
    watcher.onChange((pair) => this.updateSecureContextOptions({ cert: pair.cert, key: pair.key }));
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

export function grpcServerCredentials(watcher: TlsFilesWatcher): ServerCredentials {
  return new RotatingServerCredentials(watcher);
}
