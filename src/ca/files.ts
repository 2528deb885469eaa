/** Private files of the CA: keys and the journal, written atomically with mode 0600. */
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { caInvalid } from './errors.ts';

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes via a temp file and rename, so a crash leaves the old or the new content, never half. */
export function writePrivateFile(file: string, content: string | Buffer): void {
  ensurePrivateDir(path.dirname(file));
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function writeKey(dir: string, name: string, key: KeyObject): string {
  const rel = path.join('keys', `${name}.key.pem`);
  writePrivateFile(path.join(dir, rel), key.export({ type: 'pkcs8', format: 'pem' }) as string);
  return rel;
}

export function readKey(dir: string, rel: string): KeyObject {
  const file = path.join(dir, rel);
  try {
    return createPrivateKey(readFileSync(file));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : 'is not a readable private key';
    throw caInvalid(`${file} ${reason} (the CA journal refers to it)`, { file });
  }
}

export function removeKey(dir: string, rel: string): void {
  rmSync(path.join(dir, rel), { force: true });
}

export const fileExists = (file: string): boolean => existsSync(file);
