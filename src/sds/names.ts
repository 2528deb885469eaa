/**
 * Which secret a resource name means for a caller (pure): `default` and the caller's own SPIFFE ID
 * are its certificate, `ROOTCA` and the trust domain ID are the bundle. Another workload's SPIFFE
 * ID is a request for someone else's key: refused.
 */
import type { WorkloadIdentity } from '../identity/index.ts';
import { MeshwardError } from '../lib/errors.ts';

export const DEFAULT_SECRET = 'default';
export const ROOTCA_SECRET = 'ROOTCA';
/** Names served when a client asks for none (wildcard). */
export const WILDCARD_NAMES = [DEFAULT_SECRET, ROOTCA_SECRET];

export type SecretKind = 'certificate' | 'bundle' | 'unknown';

export function classifyName(name: string, identity: WorkloadIdentity): SecretKind {
  if (name === DEFAULT_SECRET || name === identity.spiffeId) return 'certificate';
  if (name === ROOTCA_SECRET || name === `spiffe://${identity.trustDomain}`) return 'bundle';
  if (name.startsWith('spiffe://')) {
    throw new MeshwardError('PERMISSION_DENIED', `${identity.spiffeId} may not fetch the secret of ${name}`, { details: { caller: identity.spiffeId, requested: name } });
  }
  return 'unknown';
}
