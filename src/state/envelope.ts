/**
 * AES-256-GCM envelope for secrets at rest: each secret gets a random data key (DEK); the DEK is
 * wrapped by the KEK. The secret's name is the additional authenticated data of both layers, so a
 * sealed value moved under another name does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { StateError } from './errors.ts';

interface Sealed {
  v: 1;
  /** DEK wrapped by the KEK: iv, ciphertext, tag (base64). */
  dek: [string, string, string];
  /** Secret under the DEK: iv, ciphertext, tag (base64). */
  data: [string, string, string];
}

function encrypt(key: Buffer, aad: string, plain: Buffer): [string, string, string] {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return [iv.toString('base64'), ct.toString('base64'), cipher.getAuthTag().toString('base64')];
}

function decrypt(key: Buffer, aad: string, [iv, ct, tag]: [string, string, string]): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64')).setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]);
}

/** Seals `plain` under `kek` as JSON text; `name` binds it to where it is stored. */
export function seal(kek: Buffer, name: string, plain: Buffer): string {
  const dek = randomBytes(32);
  try {
    const sealed: Sealed = { v: 1, dek: encrypt(kek, `dek:${name}`, dek), data: encrypt(dek, name, plain) };
    return JSON.stringify(sealed);
  } finally {
    dek.fill(0);
  }
}

/** Opens a sealed secret; a wrong KEK, name or an altered value is STATE_KEK_INVALID. */
export function open(kek: Buffer, name: string, sealedText: string): Buffer {
  return openWithAny([kek], name, sealedText).plain;
}

/**
 * Opens a sealed secret with the first of `keks` that opens it (the current KEK first, then
 * previous ones during a KEK rotation); `index` says which. None: STATE_KEK_INVALID.
 */
export function openWithAny(keks: readonly Buffer[], name: string, sealedText: string): { plain: Buffer; index: number } {
  let sealed: Sealed;
  try {
    sealed = JSON.parse(sealedText) as Sealed;
    if (sealed.v !== 1) throw new Error(`unsupported envelope version ${String(sealed.v)}`);
  } catch (err) {
    throw new StateError('STATE_KEK_INVALID', `secret "${name}" is not a sealed value: ${(err as Error).message}`, { cause: err });
  }
  let last: unknown;
  for (let index = 0; index < keks.length; index++) {
    let dek: Buffer | undefined;
    try {
      dek = decrypt(keks[index]!, `dek:${name}`, sealed.dek);
    } catch (err) {
      last = err; // not this KEK: try the next one
      continue;
    }
    try {
      return { plain: decrypt(dek, name, sealed.data), index };
    } catch (err) {
      // The KEK opened the data key, so the data itself was altered: no other KEK can help.
      throw new StateError('STATE_KEK_INVALID', `secret "${name}" was altered: ${(err as Error).message}`, { cause: err });
    } finally {
      dek.fill(0);
    }
  }
  const tried = keks.length === 1 ? 'this key-encryption key' : `any of the ${keks.length} key-encryption keys given (current and previous)`;
  throw new StateError('STATE_KEK_INVALID', `secret "${name}" does not open with ${tried} (another KEK sealed it, or it was altered): ${(last as Error | undefined)?.message ?? 'no key'}`, { cause: last });
}
