/**
 * Authenticates gRPC callers (sidecars) from the bearer token in their metadata: a Kubernetes
 * service-account JWT from a configured issuer, or a meshward bootstrap token. Verified tokens
 * are cached until they expire (by the exact `authorization` value carrying them), so a
 * reconnecting fleet costs one signature check per token.
 */
import type { KeyObject } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { IdentitySettings } from '../config/kinds/mesh.ts';
import { type Clock, systemClock } from '../lib/clock.ts';
import { BOOTSTRAP_AUDIENCE, BOOTSTRAP_ISSUER } from './bootstrap.ts';
import { serviceAccountOf } from './claims.ts';
import { UnauthenticatedError } from './errors.ts';
import { workloadSpiffeId } from './spiffe-id.ts';

export interface WorkloadIdentity {
  spiffeId: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
  via: 'k8s-token' | 'bootstrap-token';
  /**
   * Until when (ms since the epoch) the token that proved this identity is accepted: its `exp`
   * plus the clock tolerance. Streams opened with it end then (SDS), so a revoked or rotated
   * service-account token does not keep a private key flowing. Absent for a token without `exp`.
   */
  validUntil?: number;
}

export interface WorkloadAuthenticator {
  /** The caller's identity; throws UnauthenticatedError (code UNAUTHENTICATED) without a valid token. */
  authenticate(metadata: Metadata): Promise<WorkloadIdentity>;
  /**
   * The same from the value of an `authorization` header (`Bearer <token>`), for calls served off
   * grpc-js (no Metadata to build). Optional: callers fall back to `authenticate`.
   */
  authenticateHeader?(authorization: unknown): Promise<WorkloadIdentity>;
  /**
   * The identity already verified for this exact `authorization` value and not yet expired, else
   * undefined (then call `authenticateHeader`): lets a hot path skip a promise per call. Optional.
   */
  cachedIdentity?(authorization: unknown): WorkloadIdentity | undefined;
}

export interface WorkloadAuthenticatorDeps {
  /** Current trust domain and identity settings (read per call, so config reloads apply). */
  settings(): { trustDomain: string; identity: IdentitySettings };
  /** Public key of meshward's bootstrap tokens; bootstrap tokens are refused without it. */
  bootstrapPublicKey?: KeyObject;
  clock?: Clock;
  /** Verified tokens kept (default 10,000). */
  cacheSize?: number;
}

const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const CLOCK_TOLERANCE_S = 30;

/** The bearer token of gRPC metadata, or undefined. */
export function bearerToken(metadata: Metadata): string | undefined {
  return bearerOf(metadata.get('authorization')[0]);
}

function bearerOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

export function createWorkloadAuthenticator(deps: WorkloadAuthenticatorDeps): Required<WorkloadAuthenticator> {
  const clock = deps.clock ?? systemClock;
  const cacheSize = deps.cacheSize ?? 10_000;
  const keySets = new Map<string, JWTVerifyGetKey>();
  let cache = new Map<string, { identity: WorkloadIdentity; expiresAt: number }>();
  let cachedFor: unknown;

  function keySet(issuer: IdentitySettings['tokenIssuers'][number]): JWTVerifyGetKey {
    const cacheKey = issuer.jwks ? `inline:${issuer.jwks}` : `uri:${issuer.jwksUri}`;
    let ks = keySets.get(cacheKey);
    if (!ks) {
      if (issuer.jwks) ks = createLocalJWKSet(JSON.parse(issuer.jwks));
      else if (issuer.jwksUri) ks = createRemoteJWKSet(new URL(issuer.jwksUri));
      else throw new UnauthenticatedError(`token issuer ${issuer.issuer} has neither jwks nor jwksUri configured`);
      keySets.set(cacheKey, ks);
    }
    return ks;
  }

  async function verify(token: string, trustDomain: string, identity: IdentitySettings): Promise<{ payload: JWTPayload; via: WorkloadIdentity['via'] }> {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch (err) {
      throw new UnauthenticatedError('bearer token is not a JWT', err);
    }
    const currentDate = new Date(clock.now());
    try {
      if (unverified.iss === BOOTSTRAP_ISSUER) {
        if (!identity.bootstrapTokens || !deps.bootstrapPublicKey) throw new UnauthenticatedError('bootstrap tokens are disabled (Mesh.spec.identity.bootstrapTokens)');
        const { payload } = await jwtVerify(token, deps.bootstrapPublicKey, {
          issuer: BOOTSTRAP_ISSUER, audience: BOOTSTRAP_AUDIENCE, algorithms: ['ES256'], currentDate, clockTolerance: CLOCK_TOLERANCE_S, requiredClaims: ['exp'],
        });
        return { payload, via: 'bootstrap-token' };
      }
      const issuer = identity.tokenIssuers.find((i) => i.issuer === unverified.iss);
      if (!issuer) throw new UnauthenticatedError(`token issuer "${String(unverified.iss)}" is not trusted (Mesh.spec.identity.tokenIssuers in trust domain ${trustDomain})`);
      const { payload } = await jwtVerify(token, keySet(issuer), {
        issuer: issuer.issuer,
        ...(issuer.audiences?.length ? { audience: issuer.audiences } : {}),
        algorithms: ASYMMETRIC_ALGS, currentDate, clockTolerance: CLOCK_TOLERANCE_S,
      });
      return { payload, via: 'k8s-token' };
    } catch (err) {
      if (err instanceof UnauthenticatedError) throw err;
      const reason = (err as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new UnauthenticatedError(`bearer token rejected (${reason}): ${(err as Error).message}`, err);
    }
  }

  function remember(header: string, identity: WorkloadIdentity, exp: number | undefined): void {
    const expiresAt = exp === undefined ? clock.now() + 5 * 60_000 : exp * 1000;
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
    cache.set(header, { identity, expiresAt });
  }

  /** The cache for the current settings, emptied when they change (issuers may have changed). */
  function cacheFor(settings: unknown): typeof cache {
    if (cachedFor !== settings) {
      cache = new Map();
      cachedFor = settings;
    }
    return cache;
  }

  function cachedIdentity(authorization: unknown): WorkloadIdentity | undefined {
    if (typeof authorization !== 'string') return undefined;
    // Keyed by the exact header value (its one token): a hit skips parsing the header again.
    const hit = cacheFor(deps.settings()).get(authorization);
    return hit && hit.expiresAt > clock.now() ? hit.identity : undefined;
  }

  const authenticator = {
    authenticate: (metadata: Metadata) => authenticator.authenticateHeader(metadata.get('authorization')[0]),
    cachedIdentity,
    async authenticateHeader(authorization: unknown): Promise<WorkloadIdentity> {
      const hit = cachedIdentity(authorization);
      if (hit) return hit;
      const settings = deps.settings();
      const token = bearerOf(authorization);
      if (!token) throw new UnauthenticatedError('no bearer token (send gRPC metadata "authorization: Bearer <service-account JWT>")');
      const { payload, via } = await verify(token, settings.trustDomain, settings.identity);
      const ref = serviceAccountOf(payload);
      if ('error' in ref) throw new UnauthenticatedError(ref.error);
      let spiffeId: string;
      try {
        spiffeId = workloadSpiffeId(settings.trustDomain, ref.namespace, ref.serviceAccount);
      } catch (err) {
        throw new UnauthenticatedError(`token names an unusable identity: ${(err as Error).message}`, err);
      }
      const identity: WorkloadIdentity = Object.freeze({
        spiffeId, trustDomain: settings.trustDomain, namespace: ref.namespace, serviceAccount: ref.serviceAccount, via,
        ...(payload.exp === undefined ? {} : { validUntil: (payload.exp + CLOCK_TOLERANCE_S) * 1000 }),
      });
      remember(authorization as string, identity, payload.exp);
      return identity;
    },
  };
  return authenticator satisfies WorkloadAuthenticator;
}
