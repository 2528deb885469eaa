/**
 * The checkpoint signing key: Ed25519, generated on first start in `<data>/audit/`, private key
 * 0600 (never logged), public key next to it (`checkpoint-key.pub.pem`) for auditors to copy and pin.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkpointKeyId } from './checkpoint.ts';
import { AuditCheckpointInvalidError } from './errors.ts';

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  /** SPKI PEM, as published. */
  publicKeyPem: string;
}

export function checkpointDir(dataDir: string): string {
  return path.join(dataDir, 'audit');
}

export function checkpointPrivateKeyFile(dataDir: string): string {
  return path.join(checkpointDir(dataDir), 'checkpoint-key.pem');
}

export function checkpointPublicKeyFile(dataDir: string): string {
  return path.join(checkpointDir(dataDir), 'checkpoint-key.pub.pem');
}

function withPublic(privateKey: KeyObject): CheckpointKey {
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: checkpointKeyId(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string };
}

/** Loads the key, creating it on first start. The public key file is (re)written from the private key. */
export function loadOrCreateCheckpointKey(dataDir: string): CheckpointKey {
  const file = checkpointPrivateKeyFile(dataDir);
  let key: CheckpointKey;
  if (existsSync(file)) {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(readFileSync(file));
    } catch (err) {
      throw new AuditCheckpointInvalidError(`${file} is not a readable private key: ${(err as Error).message}`);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new AuditCheckpointInvalidError(`${file} is a ${privateKey.asymmetricKeyType} key; checkpoints are signed with Ed25519`);
    key = withPublic(privateKey);
  } else {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    // 'wx': two processes starting at once on one data dir must not overwrite each other's key.
    writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    key = withPublic(privateKey);
  }
  const pub = checkpointPublicKeyFile(dataDir);
  if (!existsSync(pub) || readFileSync(pub, 'utf8') !== key.publicKeyPem) writeFileSync(pub, key.publicKeyPem, { mode: 0o644 });
  return key;
}

/** Reads trusted public keys (PEM files; a private key file yields its public key), by keyId. */
export function readTrustedKeys(files: readonly string[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const file of files) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (err) {
      throw new AuditCheckpointInvalidError(`cannot read the checkpoint public key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey(text);
    } catch {
      throw new AuditCheckpointInvalidError(`${file} is not a PEM public key`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new AuditCheckpointInvalidError(`${file} is a ${key.asymmetricKeyType} key; checkpoints are signed with Ed25519`);
    keys.set(checkpointKeyId(key), key);
  }
  return keys;
}
