/**
 * Certificate authority: SPIFFE X509-SVIDs and JWT-SVIDs for workloads, a two-slot rotating CA
 * (or a plugged-in one), issued-certificate records, and the Istio CA API.
 */
export { createCaCapability, caDirOf, type CaCapability } from './capability.ts';
export { Authority, type AuthorityOptions, type Signer, type SlotSummary, type TrustBundle, type BundleListener } from './authority.ts';
export { Issuer, type IssueRequest, type X509Svid } from './issuer.ts';
export { SvidCache, type SvidListener, type WorkloadSvid } from './svids.ts';
export { CertificateRecords, type CertificateRecord, type CertificateQuery, type IssuanceMethod } from './records.ts';
export { parseCsr, type ParsedCsr } from './csr.ts';
export { bundleVersion, spiffeBundle, type SpiffeBundle } from './bundle.ts';
export { PLUGGED_IN_FILES, readPluggedInCa } from './plugged-in.ts';
export { openCaSource, pluggedCaConfigured, type CaSource } from './source.ts';
export { grpcError } from './grpc-status.ts';
export { istioCaServiceDefinition } from './istio-api.ts';
export { CaError } from './errors.ts';
export { SharedCa, type SharedCaOptions } from './shared.ts';
export { activationDelayMs, BUNDLE_PROPAGATION_S, BUNDLE_REFRESH_HINT_S, SAFE_ACTIVATION_DELAY, SAFE_ACTIVATION_DELAY_MS } from './rotation-delay.ts';
