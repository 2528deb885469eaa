/**
 * Meshward bootstrap tokens: short JWTs meshward signs itself (ES256) so a sidecar outside
 * Kubernetes (or a test) can authenticate as `<namespace>/<serviceAccount>`. The signing key lives
 * in `<dataDir>/ca/bootstrap-token.key` (0600) and never leaves it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, SignJWT } from 'jose';
import { validatePathSegment } from './spiffe-id.ts';

export const BOOTSTRAP_ISSUER = 'meshward-bootstrap';
export const BOOTSTRAP_AUDIENCE = 'meshward';

export interface BootstrapKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly kid: string;
}

export function bootstrapKeyFile(dataDir: string): string {
  return path.join(dataDir, 'ca', 'bootstrap-token.key');
}

async function withKid(privateKey: KeyObject): Promise<BootstrapKey> {
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: await calculateJwkThumbprint(await exportJWK(publicKey)) };
}

/** Loads the bootstrap signing key, creating it (0600) on first use. */
export async function loadOrCreateBootstrapKey(dataDir: string): Promise<BootstrapKey> {
  const file = bootstrapKeyFile(dataDir);
  if (existsSync(file)) return withKid(createPrivateKey(readFileSync(file)));
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  return withKid(privateKey);
}

/** Where replicas keep secrets they share (the PostgreSQL state store): first creator wins. */
export interface SharedSecrets {
  secret(name: string, create: () => Buffer): Promise<Buffer>;
}

export const SHARED_BOOTSTRAP_KEY_NAME = 'bootstrap-token.key';

/** The bootstrap signing key every replica shares (sealed in the store), created by the first to ask. */
export async function loadOrCreateSharedBootstrapKey(store: SharedSecrets): Promise<BootstrapKey> {
  const pem = await store.secret(SHARED_BOOTSTRAP_KEY_NAME, () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  });
  return withKid(createPrivateKey(pem));
}

export interface BootstrapTokenRequest {
  namespace: string;
  serviceAccount: string;
  ttlMs: number;
  nowMs: number;
}

/** Signs a bootstrap token for one service account. */
export async function signBootstrapToken(key: BootstrapKey, req: BootstrapTokenRequest): Promise<string> {
  validatePathSegment(req.namespace, 'namespace');
  validatePathSegment(req.serviceAccount, 'service account');
  const iat = Math.floor(req.nowMs / 1000);
  return new SignJWT({ 'kubernetes.io': { namespace: req.namespace, serviceaccount: { name: req.serviceAccount } } })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
    .setIssuer(BOOTSTRAP_ISSUER)
    .setAudience(BOOTSTRAP_AUDIENCE)
    .setSubject(`system:serviceaccount:${req.namespace}:${req.serviceAccount}`)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.max(1, Math.floor(req.ttlMs / 1000)))
    .setJti(randomUUID())
    .sign(key.privateKey);
}
