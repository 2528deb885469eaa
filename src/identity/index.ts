/**
 * Workload identity: who a sidecar is (from its service-account or bootstrap token) and the SPIFFE
 * ID that names it. Shared by SDS, the Istio CA API and the xDS server.
 */
export { bearerToken, createWorkloadAuthenticator, type WorkloadAuthenticator, type WorkloadAuthenticatorDeps, type WorkloadIdentity } from './authenticator.ts';
export { BOOTSTRAP_AUDIENCE, BOOTSTRAP_ISSUER, bootstrapKeyFile, loadOrCreateBootstrapKey, loadOrCreateSharedBootstrapKey, SHARED_BOOTSTRAP_KEY_NAME, signBootstrapToken, type BootstrapKey, type BootstrapTokenRequest, type SharedSecrets } from './bootstrap.ts';
export { serviceAccountOf, type ServiceAccountRef } from './claims.ts';
export { SpiffeIdError, UnauthenticatedError } from './errors.ts';
export { MAX_SPIFFE_ID_BYTES, parseSpiffeId, validatePathSegment, validateTrustDomain, workloadSpiffeId, type SpiffeId } from './spiffe-id.ts';
