/**
 * SPIFFE IDs per the SPIFFE ID spec (pure): `spiffe://<trust-domain>/<path>`. The checks are the
 * spec's, so an ID meshward signs is one every SPIFFE implementation accepts.
 */
import { SpiffeIdError } from './errors.ts';

export const MAX_SPIFFE_ID_BYTES = 2048;
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

export interface SpiffeId {
  readonly trustDomain: string;
  /** Path with its leading `/`, or `` for the trust domain's own ID. */
  readonly path: string;
  readonly uri: string;
}

export function validateTrustDomain(trustDomain: string): void {
  if (trustDomain.length === 0) throw new SpiffeIdError('trust domain is empty');
  if (!TRUST_DOMAIN_RE.test(trustDomain)) {
    throw new SpiffeIdError(`trust domain "${trustDomain}" may contain only lower-case letters, digits, ".", "-" and "_"`, { trustDomain });
  }
}

export function validatePathSegment(segment: string, what = 'path segment'): void {
  if (segment.length === 0) throw new SpiffeIdError(`${what} is empty`);
  if (segment === '.' || segment === '..') throw new SpiffeIdError(`${what} "${segment}" is not allowed ("." and ".." segments are forbidden)`);
  if (!SEGMENT_RE.test(segment)) throw new SpiffeIdError(`${what} "${segment}" may contain only letters, digits, ".", "-" and "_"`);
}

/** Parses and validates a SPIFFE ID; throws SpiffeIdError saying which rule it breaks. */
export function parseSpiffeId(text: string): SpiffeId {
  if (Buffer.byteLength(text, 'utf8') > MAX_SPIFFE_ID_BYTES) throw new SpiffeIdError(`SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  const scheme = 'spiffe://';
  if (!text.toLowerCase().startsWith(scheme)) throw new SpiffeIdError(`SPIFFE ID "${text}" must start with spiffe://`);
  if (!text.startsWith(scheme)) throw new SpiffeIdError(`SPIFFE ID "${text}" must use the lower-case scheme spiffe://`);
  if (text.includes('?')) throw new SpiffeIdError(`SPIFFE ID "${text}" must not contain a query`);
  if (text.includes('#')) throw new SpiffeIdError(`SPIFFE ID "${text}" must not contain a fragment`);
  const rest = text.slice(scheme.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (trustDomain.includes('@')) throw new SpiffeIdError(`SPIFFE ID "${text}" must not contain user info`);
  if (trustDomain.includes(':')) throw new SpiffeIdError(`SPIFFE ID "${text}" must not contain a port`);
  validateTrustDomain(trustDomain);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (path === '/') throw new SpiffeIdError(`SPIFFE ID "${text}" must not end with "/"`);
  if (path) {
    for (const segment of path.slice(1).split('/')) validatePathSegment(segment, `path segment of "${text}"`);
  }
  return { trustDomain, path, uri: text };
}

/** `spiffe://<td>/ns/<namespace>/sa/<serviceAccount>`, Istio's workload identity, validated. */
export function workloadSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  validateTrustDomain(trustDomain);
  validatePathSegment(namespace, 'namespace');
  validatePathSegment(serviceAccount, 'service account');
  const uri = `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  if (Buffer.byteLength(uri) > MAX_SPIFFE_ID_BYTES) throw new SpiffeIdError(`SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  return uri;
}
