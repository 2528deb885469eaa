/**
 * Namespace and service account from a Kubernetes service-account token's claims (pure). Bound
 * tokens carry a `kubernetes.io` object; legacy secret-based tokens carry flat claims; both carry
 * `sub: system:serviceaccount:<ns>:<sa>`, which must agree with them when present.
 */
import type { JWTPayload } from 'jose';

export interface ServiceAccountRef {
  namespace: string;
  serviceAccount: string;
}

const SUB_PREFIX = 'system:serviceaccount:';

function fromSub(sub: unknown): ServiceAccountRef | undefined {
  if (typeof sub !== 'string' || !sub.startsWith(SUB_PREFIX)) return undefined;
  const parts = sub.slice(SUB_PREFIX.length).split(':');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { namespace: parts[0], serviceAccount: parts[1] };
}

function fromKubernetesClaim(payload: JWTPayload): ServiceAccountRef | undefined {
  const k8s = payload['kubernetes.io'];
  if (k8s && typeof k8s === 'object') {
    const { namespace, serviceaccount } = k8s as { namespace?: unknown; serviceaccount?: { name?: unknown } };
    if (typeof namespace === 'string' && typeof serviceaccount?.name === 'string') return { namespace, serviceAccount: serviceaccount.name };
  }
  const ns = payload['kubernetes.io/serviceaccount/namespace'];
  const sa = payload['kubernetes.io/serviceaccount/service-account.name'];
  if (typeof ns === 'string' && typeof sa === 'string') return { namespace: ns, serviceAccount: sa };
  return undefined;
}

/** The service account a token names, or a reason it names none (or two different ones). */
export function serviceAccountOf(payload: JWTPayload): ServiceAccountRef | { error: string } {
  const claim = fromKubernetesClaim(payload);
  const sub = fromSub(payload.sub);
  if (claim && sub && (claim.namespace !== sub.namespace || claim.serviceAccount !== sub.serviceAccount)) {
    return { error: 'token claims name a different service account than its sub' };
  }
  const ref = claim ?? sub;
  return ref ?? { error: 'token names no service account (no kubernetes.io claims and sub is not system:serviceaccount:<ns>:<sa>)' };
}
