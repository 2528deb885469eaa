/**
 * What the xDS server needs from node authentication. Structurally the same as the CA's
 * `WorkloadIdentity` / `WorkloadAuthenticator` (src/identity), declared here so this capability
 * owns its consumer-side interface and tests can inject a fake.
 */
import type { Metadata } from '@grpc/grpc-js';

export interface WorkloadIdentity {
  /** e.g. spiffe://cluster.local/ns/shop/sa/orders */
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** How it was proven (e.g. `k8s-token`, `bootstrap-token`, `mtls`), for proxy-status and logs. */
  readonly via: string;
  /** Until when (ms since the epoch) the credential that proved it is accepted; the stream ends then. */
  readonly validUntil?: number;
}

export interface WorkloadAuthenticator {
  /** Resolves the caller's identity from call metadata; rejects with code UNAUTHENTICATED. */
  authenticate(metadata: Metadata): Promise<WorkloadIdentity>;
}
