import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { exportJWK, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkloadAuthenticator, loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-identity-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const k8sKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const K8S_ISSUER = 'https://kubernetes.default.svc';

async function k8sJwks(): Promise<string> {
  return JSON.stringify({ keys: [{ ...(await exportJWK(k8sKeys.publicKey)), kid: 'k1', alg: 'ES256' }] });
}

function metadataWith(token?: string): Metadata {
  const md = new Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return md;
}

async function k8sToken(clock: FakeClock, claims: Record<string, unknown>, opts: { aud?: string; iss?: string; ttlS?: number } = {}): Promise<string> {
  const iat = Math.floor(clock.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(opts.iss ?? K8S_ISSUER)
    .setAudience(opts.aud ?? 'istio-ca')
    .setIssuedAt(iat)
    .setExpirationTime(iat + (opts.ttlS ?? 3600))
    .sign(k8sKeys.privateKey);
}

async function setup(bootstrapTokens = true) {
  const clock = new FakeClock();
  const key = await loadOrCreateBootstrapKey(dataDir);
  const settings = {
    trustDomain: 'example.org',
    identity: { bootstrapTokens, tokenIssuers: [{ issuer: K8S_ISSUER, audiences: ['istio-ca'], jwks: await k8sJwks() }] },
  };
  const auth = createWorkloadAuthenticator({ settings: () => settings, bootstrapPublicKey: key.publicKey, clock });
  return { clock, key, auth };
}

describe('workload authenticator', () => {
  it('stores the bootstrap signing key with mode 0600', async () => {
    await loadOrCreateBootstrapKey(dataDir);
    expect(statSync(path.join(dataDir, 'ca', 'bootstrap-token.key')).mode & 0o777).toBe(0o600);
  });

  it('authenticates a meshward bootstrap token as its service account', async () => {
    const { clock, key, auth } = await setup();
    const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 60_000, nowMs: clock.now() });
    const id = await auth.authenticate(metadataWith(token));
    expect(id).toEqual({ spiffeId: 'spiffe://example.org/ns/shop/sa/orders', trustDomain: 'example.org', namespace: 'shop', serviceAccount: 'orders', via: 'bootstrap-token',
      // The token's exp plus the 30 s clock tolerance: streams opened with it end then.
      validUntil: clock.now() + 60_000 + 30_000 });
  });

  it('refuses bootstrap tokens when they are disabled', async () => {
    const { clock, key, auth } = await setup(false);
    const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 60_000, nowMs: clock.now() });
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses an expired bootstrap token', async () => {
    const { clock, key, auth } = await setup();
    const token = await signBootstrapToken(key, { namespace: 'shop', serviceAccount: 'orders', ttlMs: 60_000, nowMs: clock.now() });
    clock.advance(5 * 60_000);
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a call without a token', async () => {
    const { auth } = await setup();
    await expect(auth.authenticate(metadataWith())).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a token signed by a key other than the bootstrap key', async () => {
    const { clock, auth } = await setup();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer('meshward-bootstrap').setAudience('meshward')
      .setSubject('system:serviceaccount:shop:orders').setExpirationTime(Math.floor(clock.now() / 1000) + 60).sign(other.privateKey);
    await expect(auth.authenticate(metadataWith(forged))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('authenticates a bound Kubernetes service-account token from its kubernetes.io claims', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:frontend', 'kubernetes.io': { namespace: 'web', serviceaccount: { name: 'frontend' } } });
    const id = await auth.authenticate(metadataWith(token));
    expect(id.spiffeId).toBe('spiffe://example.org/ns/web/sa/frontend');
    expect(id.via).toBe('k8s-token');
  });

  it('authenticates a Kubernetes token carrying only sub', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' });
    expect((await auth.authenticate(metadataWith(token))).serviceAccount).toBe('api');
  });

  it('refuses a Kubernetes token for another audience', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' }, { aud: 'vault' });
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a token from an issuer that is not configured', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' }, { iss: 'https://evil.example' });
    await expect(auth.authenticate(metadataWith(token))).rejects.toThrow(/not trusted/);
  });

  it('refuses a token whose claims and sub disagree', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api', 'kubernetes.io': { namespace: 'kube-system', serviceaccount: { name: 'admin' } } });
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a token naming a service account that is not a valid SPIFFE path segment', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:..' });
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('stops accepting a cached token once it expires', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' }, { ttlS: 120 });
    await auth.authenticate(metadataWith(token));
    clock.advance(10 * 60_000);
    await expect(auth.authenticate(metadataWith(token))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('serves from its cache only the exact header it verified: another token, or a tampered one, is verified anew', async () => {
    const { clock, auth } = await setup();
    const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' });
    expect((await auth.authenticateHeader(`Bearer ${token}`)).spiffeId).toBe('spiffe://example.org/ns/web/sa/api');
    // Same token, other spelling of the scheme: not a cache hit, verified and accepted.
    expect((await auth.authenticateHeader(`bearer  ${token}`)).spiffeId).toBe('spiffe://example.org/ns/web/sa/api');
    const [head, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const swapped = Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:web:admin' })).toString('base64url');
    await expect(auth.authenticateHeader(`Bearer ${head}.${swapped}.${signature}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(auth.authenticateHeader(`Bearer ${token}x`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(auth.authenticateHeader(`Bearer ${token} trailing`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('verifies Kubernetes tokens against a JWKS fetched from jwksUri', async () => {
    const jwks = await k8sJwks();
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(jwks));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const clock = new FakeClock(Date.now());
      const port = (server.address() as { port: number }).port;
      const settings = { trustDomain: 'example.org', identity: { bootstrapTokens: false, tokenIssuers: [{ issuer: K8S_ISSUER, jwksUri: `http://127.0.0.1:${port}/openid/v1/jwks` }] } };
      const auth = createWorkloadAuthenticator({ settings: () => settings, clock });
      const token = await k8sToken(clock, { sub: 'system:serviceaccount:web:api' });
      expect((await auth.authenticate(metadataWith(token))).spiffeId).toBe('spiffe://example.org/ns/web/sa/api');
      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = await new SignJWT({ sub: 'system:serviceaccount:web:admin' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(K8S_ISSUER)
        .setExpirationTime(Math.floor(clock.now() / 1000) + 60).sign(other.privateKey);
      await expect(auth.authenticate(metadataWith(forged))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      server.close();
    }
  });
});
