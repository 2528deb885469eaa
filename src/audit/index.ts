/**
 * Public interface of the audit capability: the decision record contract, the capability
 * (`append` on the ext_authz hot path; query/verify/flush for the API and CLI), and the store
 * and readers the CLI uses directly.
 */
export type { DecisionOutcome, DecisionRecordV1, InputBytes, MatchedPolicy } from './record.ts';
export type { StoredDecisionV1 } from './row.ts';
export { createAuditCapability, type AuditCapability, type AuditCapabilityOptions } from './capability.ts';
export { AuditLog, type AuditLogOptions, type AuditLogSettings, type AuditLogStats, type OverloadMode } from './audit-log.ts';
export { createMasker, REDACTED, REDACTED_JWT, type Masker } from './mask.ts';
export { ChainVerifier, chainHash, GENESIS_HASH, type ChainAnchor, type VerifyFinding, type VerifyReport } from './chain.ts';
export { openAuditStore, sqliteFile, type OpenStoreOptions } from './open.ts';
export type { AuditStore } from './store.ts';
export { parseQuery, type AuditQuery, type AuditFilter, type AuditQueryParams } from './query.ts';
export { queryDecisions, getDecision, exportPages, decisionStats, verifyChain, type DecisionPage, type DecisionStats } from './reader.ts';
export { formatExport, type ExportFormat } from './export.ts';
export { clientCertificateVerifier, peerSpiffeId } from './client-cert.ts';
export { checkpointKeyId, encodeCheckpoint, parseCheckpoints, signCheckpoint, type LocatedCheckpoint, type SignedCheckpoint } from './checkpoint.ts';
export { checkpointDir, checkpointPublicKeyFile, loadOrCreateCheckpointKey, readTrustedKeys, type CheckpointKey } from './checkpoint-key.ts';
export { publishedCheckpointFiles, readCheckpointFile } from './checkpoint-files.ts';
export { verifyCheckpoints, type CheckpointFinding, type CheckpointReport } from './checkpoint-verify.ts';
export * from './errors.ts';
