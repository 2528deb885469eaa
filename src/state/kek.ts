/**
 * The key-encryption key (KEK) that wraps every secret meshward keeps in a shared store: 32 bytes,
 * base64, from `--kek-file FILE` (or `MESHWARD_KEK_FILE`) or `MESHWARD_KEK`. Every replica must
 * be given the same one.
 */
import { readFileSync } from 'node:fs';
import { StateError } from './errors.ts';

export const KEK_BYTES = 32;

function decode(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (key.length !== KEK_BYTES) {
    throw new StateError('STATE_KEK_INVALID', `${where}: the key-encryption key must be ${KEK_BYTES} bytes in base64 (got ${key.length} bytes; create one with \`openssl rand -base64 32\`)`);
  }
  return key;
}

/** A key file's text; a file that cannot be read is STATE_KEK_INVALID naming the flag and the file. */
function readKeyFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new StateError('STATE_KEK_INVALID', `${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The KEK from a file or the environment; undefined when neither is given. */
export function loadKek(source: { file?: string; env?: string }): Buffer | undefined {
  if (source.file) return decode(readKeyFile('--kek-file', source.file), source.file);
  if (source.env) return decode(source.env, 'MESHWARD_KEK');
  return undefined;
}

/**
 * Previous KEKs, still accepted to open secrets during a KEK rotation (`meshward state rekey`):
 * from a file (one base64 key per line) or `MESHWARD_PREVIOUS_KEK` (base64, comma-separated).
 */
export function loadPreviousKeks(source: { file?: string; env?: string }): Buffer[] {
  if (source.file) {
    const file = source.file;
    return readKeyFile('--previous-kek-file', file).split('\n').flatMap((l, i) => (l.trim() ? [decode(l, `${file}:${i + 1}`)] : []));
  }
  if (source.env) return source.env.split(',').map((k) => k.trim()).filter(Boolean).map((k, i) => decode(k, `MESHWARD_PREVIOUS_KEK (key ${i + 1})`));
  return [];
}

/** Refuses shared state without a KEK: secrets would otherwise sit in the database in clear. */
export function requireKek(kek: Buffer | undefined): Buffer {
  if (!kek) {
    throw new StateError('STATE_KEK_MISSING', 'with --database-url meshward keeps its CA keys and bootstrap-token key in PostgreSQL, encrypted: give every replica the same key-encryption key with --kek-file FILE or MESHWARD_KEK (base64 of 32 random bytes: `openssl rand -base64 32`)');
  }
  return kek;
}
