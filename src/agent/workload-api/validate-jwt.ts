/**
 * ValidateJWTSVID: a JWT-SVID is valid for an audience when its signature verifies against the
 * trust domain's JWT bundle, `aud` contains the audience, `exp` is present and in the future, and
 * `sub` is a SPIFFE ID of that trust domain (go-spiffe `jwtsvid.ParseAndValidate`, which SPIRE's
 * agent uses). Every failure is a WorkloadApiRequestError (InvalidArgument, as SPIRE answers).
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet, jwtVerify, type JWTPayload } from 'jose';
import { parseSpiffeId } from '../../identity/index.ts';
import { WorkloadApiRequestError } from './errors.ts';

/** JWS algorithms a JWT-SVID may use (JWT-SVID spec §3). */
const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

/** One key set per bundle object: jose caches imported keys per key set, so this avoids an import per call. */
const keySets = new WeakMap<JSONWebKeySet, ReturnType<typeof createLocalJWKSet>>();

function keySetOf(jwks: JSONWebKeySet): ReturnType<typeof createLocalJWKSet> {
  let keySet = keySets.get(jwks);
  if (!keySet) {
    keySet = createLocalJWKSet(jwks);
    keySets.set(jwks, keySet);
  }
  return keySet;
}

export interface ValidatedJwtSvid {
  spiffeId: string;
  claims: JWTPayload;
}

function unverifiedParts(token: string): { kid: string; sub: string } {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    payload = decodeJwt(token);
  } catch (err) {
    throw new WorkloadApiRequestError(`the JWT-SVID is malformed: ${(err as Error).message}`, err);
  }
  if (typeof header.kid !== 'string' || header.kid === '') throw new WorkloadApiRequestError('the JWT-SVID header has no key ID (kid)');
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') throw new WorkloadApiRequestError(`the JWT-SVID header has typ "${header.typ}" (JWT or JOSE expected)`);
  if (typeof payload.sub !== 'string') throw new WorkloadApiRequestError('the JWT-SVID has no subject (sub)');
  return { kid: header.kid, sub: payload.sub };
}

/**
 * Validates `token` for `audience` against `jwks` (the JWT-SVID keys of `trustDomain`).
 * @example await validateJwtSvid(token, 'orders', { trustDomain: 'example.org', jwks, now: new Date() })
 */
export async function validateJwtSvid(token: string, audience: string, bundle: { trustDomain: string; jwks: JSONWebKeySet; now?: Date }): Promise<ValidatedJwtSvid> {
  const { sub } = unverifiedParts(token);
  let subjectTrustDomain: string;
  try {
    subjectTrustDomain = parseSpiffeId(sub).trustDomain;
  } catch (err) {
    throw new WorkloadApiRequestError(`the JWT-SVID subject is not a SPIFFE ID: ${(err as Error).message}`, err);
  }
  if (subjectTrustDomain !== bundle.trustDomain) {
    throw new WorkloadApiRequestError(`no JWT bundle for trust domain "${subjectTrustDomain}" (this agent holds "${bundle.trustDomain}")`);
  }
  try {
    const { payload } = await jwtVerify(token, keySetOf(bundle.jwks), {
      audience,
      algorithms: JWT_SVID_ALGORITHMS,
      requiredClaims: ['exp', 'sub', 'aud'],
      ...(bundle.now ? { currentDate: bundle.now } : {}),
    });
    return { spiffeId: sub, claims: payload };
  } catch (err) {
    throw new WorkloadApiRequestError(`the JWT-SVID does not validate: ${(err as Error).message}`, err);
  }
}
