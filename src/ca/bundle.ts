/** The trust bundle as a SPIFFE bundle (JWKS with `x509-svid` and `jwt-svid` keys) (pure). */
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import type { TrustBundle } from './authority.ts';

export interface SpiffeBundle {
  keys: (JWK & { use: 'x509-svid' | 'jwt-svid' })[];
  spiffe_sequence: number;
  spiffe_refresh_hint: number;
}

/**
 * The version of the roots as SDS sends them (ROOTCA). The sequence alone does not name a bundle:
 * another CA (a plugged-in one replacing a generated one) starts again at 1, and a sidecar resuming
 * a delta stream with that version would keep its old roots. The digest makes the version differ.
 */
export function bundleVersion(bundle: { sequence: number; rootsPem: string }): string {
  return `bundle-${bundle.sequence}-${createHash('sha256').update(bundle.rootsPem).digest('hex').slice(0, 12)}`;
}

export async function spiffeBundle(bundle: TrustBundle, refreshHintSeconds: number): Promise<SpiffeBundle> {
  const x509 = await Promise.all(bundle.roots.map(async (der) => ({
    ...(await exportJWK(createPublicKey(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'pem' })))),
    use: 'x509-svid' as const,
    x5c: [der.toString('base64')],
  })));
  const jwt = await Promise.all(bundle.jwtKeys.map(async (k) => ({ ...(await exportJWK(k.publicKey)), use: 'jwt-svid' as const, kid: k.kid, alg: 'ES256' })));
  return { keys: [...x509, ...jwt], spiffe_sequence: bundle.sequence, spiffe_refresh_hint: refreshHintSeconds };
}
